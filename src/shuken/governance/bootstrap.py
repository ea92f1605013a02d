"""First start: the owner of the `default` workspace (with a sign-in password for the web UI) and one admin key,
so a fresh install is usable at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from shuken.governance.directory import Directory
from shuken.governance.identity import DEFAULT_WORKSPACE, SCOPES, Subject
from shuken.governance.keys import KeyService


@dataclass(frozen=True)
class FirstStart:
    api_key: str
    password: str


def bootstrap(directory: Directory, keys: KeyService, owner_email: str) -> FirstStart | None:
    """The new admin key and owner password on a brand-new installation (shown once by the caller), else None. Only when
    nobody exists yet: an operator who revoked every key in an incident must not get a fresh all-powerful key,
    printed into the service manager's logs, at the next restart. The `default` workspace exists already
    (`Services.open` creates it)."""
    if directory.has_users():
        return None
    operator = Subject.operator(DEFAULT_WORKSPACE)
    password = secrets.token_urlsafe(15)  # 20 characters, 120 bits
    directory.create_user(operator, owner_email, "owner", display_name="Administrator", password=password)
    _key, secret = keys.create(operator, owner_email, "admin (first start)", scopes=SCOPES)
    return FirstStart(secret, password)
