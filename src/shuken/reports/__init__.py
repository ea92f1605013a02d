"""Reports for operators and regulators: the sovereignty doctor and the compliance report."""
