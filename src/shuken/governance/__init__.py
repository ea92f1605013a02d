"""Governance: who may call Shuken (API keys now; workspaces, roles, audit and consent later)."""
