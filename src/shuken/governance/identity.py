"""Who is calling: the `Subject` every service method takes, and the roles and key scopes it can carry.

A Subject is built once per request (from an API key or a web session; for the local CLI, `Subject.operator`;
later from an OIDC sign-in) and is never trusted for more than `authz.authorize` grants it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("owner", "admin", "member", "viewer", "auditor")
SCOPES = ("chat", "knowledge:read", "knowledge:write", "admin", "audit:read")
DEFAULT_SCOPES = ("chat", "knowledge:read")
DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True)
class Subject:
    """The caller of a service operation, always inside exactly one workspace."""

    workspace: str = DEFAULT_WORKSPACE
    role: str = "member"
    user_id: int | None = None
    key_id: int | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    # None: not narrowed by a key (the local operator, or a signed-in user in the web UI).
    scopes: frozenset[str] | None = None

    @classmethod
    def operator(cls, workspace: str = DEFAULT_WORKSPACE) -> Subject:
        """The local operator using the CLI on the server's own machine: an owner of the workspace."""
        return cls(workspace=workspace, role="owner")

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def actor(self) -> str:
        return actor_name(self.user_id, self.key_id)


def actor_name(user_id: int | None, key_id: int | None = None) -> str:
    """How audit records name a caller: pseudonymous ids, never an e-mail (the chain cannot be erased)."""
    if user_id is None:
        return "operator"
    return f"user:{user_id}" + (f"/key:{key_id}" if key_id is not None else "")
