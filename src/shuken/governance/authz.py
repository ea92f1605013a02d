"""The one authorisation function: (action, resource, subject) → Decision(allowed, reason).

Three rules, checked in order: data never crosses workspaces; the subject's role must permit the action;
an API key's scopes must include the scope the action needs. Per-collection rights (groups) are SQL in
`knowledge.access`, which asks `permits()` first so retrieval applies these same rules inside its query.
"""

from __future__ import annotations

from dataclasses import dataclass

from shuken.errors import Forbidden
from shuken.governance.identity import Subject
from shuken.localisable import tr

# action → the key scope it needs. Every service entry point names one of these.
ACTION_SCOPES = {
    "chat": "chat",                       # chat/completions/embeddings and listing models
    "knowledge:read": "knowledge:read",   # list/search collections and documents, grounded answers
    "knowledge:write": "knowledge:write", # create collections, upload, delete own documents
    "knowledge:manage": "knowledge:write",  # delete any collection or document in the workspace
    "consent:self": "chat",               # grant or withdraw one's own consent
    "users:manage": "admin",              # users, memberships, groups
    "keys:manage": "admin",               # create any key (even one's own: quotas are per key) and revoke others
    "workspace:settings": "admin",        # retention, consent mode, PII actions, audit content policy
    "data:export": "admin",               # export consented training data
    "data:erase": "admin",                # erase a data subject
    "audit:read": "audit:read",           # read, verify and export the audit log; compliance report
}

ROLE_ACTIONS = {
    "owner": set(ACTION_SCOPES),
    "admin": set(ACTION_SCOPES),
    "member": {"chat", "knowledge:read", "knowledge:write", "consent:self"},
    "viewer": {"chat", "knowledge:read", "consent:self"},
    "auditor": {"audit:read"},
}


@dataclass(frozen=True)
class Resource:
    kind: str  # "workspace", "collection", "key", "user", "audit", ...
    workspace: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # a refusal's reason is the whole message for the caller


def permits(subject: Subject, action: str) -> bool:
    """Role and key scope alone (no resource): what `knowledge.access` composes into its SQL."""
    scope = ACTION_SCOPES[action]
    if action not in ROLE_ACTIONS.get(subject.role, ()):
        return False
    # An `admin` key may do whatever its holder's role allows.
    return subject.scopes is None or scope in subject.scopes or "admin" in subject.scopes


def authorize(action: str, resource: Resource, subject: Subject) -> Decision:
    if action not in ACTION_SCOPES:
        raise ValueError(f"unknown action {action!r}")
    if resource.workspace != subject.workspace:
        return Decision(False, tr("Not allowed: %(resource)s belongs to another workspace than the caller's "
                                  "('%(workspace)s'); data never crosses workspaces.",
                                  resource=str(resource), workspace=subject.workspace))
    if action not in ROLE_ACTIONS.get(subject.role, ()):
        return Decision(False, tr("Not allowed: the role '%(role)s' in workspace '%(workspace)s' does not allow "
                                  "'%(action)s'.", role=subject.role, workspace=subject.workspace, action=action))
    if not permits(subject, action):
        return Decision(False, tr("Not allowed: this API key lacks the scope '%(scope)s' that '%(action)s' needs; "
                                  "ask an administrator for a key with it (`shuken keys create --scopes ...`).",
                                  scope=ACTION_SCOPES[action], action=action))
    how = f"role '{subject.role}'" + ("" if subject.scopes is None else " and the key's scopes")
    return Decision(True, f"{how} allow '{action}' in workspace '{subject.workspace}'")


def require(action: str, resource: Resource, subject: Subject) -> Decision:
    """authorize(), raising Forbidden (with the reason) when not allowed."""
    decision = authorize(action, resource, subject)
    if not decision.allowed:
        raise Forbidden(decision.reason, code="forbidden")
    return decision
