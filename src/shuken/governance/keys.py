"""API keys: create (secret shown once), list, revoke, authenticate. Only a SHA-256 of each secret is stored.

Secrets are 256-bit random tokens, so a fast hash is the right tool (as GitHub and Stripe tokens do):
there is nothing to brute-force, and authentication stays a single indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from shuken.errors import InvalidRequest, NotFound, Unauthorized
from shuken.store import Database
from shuken.store.tables import ApiKeyRow

SECRET_PREFIX = "sk-shuken-"
ROLES = ("admin", "user")


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    groups: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role,
            "groups": list(self.groups),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _from_row(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, row.prefix, row.role, row.created_at, row.revoked_at, tuple(row.groups or ()))


class KeyService:
    def __init__(self, db: Database):
        self.db = db

    def create(self, name: str, role: str = "user", groups: list[str] | tuple[str, ...] = ()) -> tuple[ApiKey, str]:
        """Return the stored key and its secret; the secret cannot be recovered afterwards."""
        name = name.strip()
        if not name:
            raise InvalidRequest("A key needs a non-empty name.", param="name")
        if role not in ROLES:
            raise InvalidRequest(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.", param="role")
        groups = sorted({group.strip() for group in groups if group.strip()})
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            name=name,
            prefix=secret[: len(SECRET_PREFIX) + 6],
            secret_hash=_hash(secret),
            role=role,
            groups=groups,
            created_at=datetime.now(timezone.utc),
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            return _from_row(row), secret

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        with self.db.session() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.id)
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            return [_from_row(row) for row in session.scalars(query)]

    def count_active(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))

    def revoke(self, ident: str) -> ApiKey:
        """Revoke by numeric id, name or displayed prefix (the latter two must be unambiguous)."""
        with self.db.session() as session:
            rows = [
                row
                for row in session.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
                if str(row.id) == ident or row.name == ident or row.prefix == ident
            ]
            if not rows:
                raise NotFound(f"No active key matches {ident!r}; see `shuken keys list`.", code="key_not_found")
            if len(rows) > 1:
                ids = ", ".join(str(row.id) for row in rows)
                raise InvalidRequest(f"{ident!r} matches several keys ({ids}); revoke by id instead.")
            rows[0].revoked_at = datetime.now(timezone.utc)
            return _from_row(rows[0])

    def authenticate(self, secret: str | None) -> ApiKey:
        if not secret:
            raise Unauthorized(
                "Missing API key. Send it as 'Authorization: Bearer <key>'; create one with `shuken keys create`."
            )
        with self.db.session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == _hash(secret)))
            if row is None or row.revoked_at is not None:
                raise Unauthorized("Incorrect or revoked API key. Check the key, or create one with `shuken keys create`.")
            return _from_row(row)
