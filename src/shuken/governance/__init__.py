"""Governance: who may do what (workspaces, users, roles, keys), what happened (the audit chain), whose data
may be used (consent, PII, retention, erasure), and that nothing leaves (the egress guard)."""
