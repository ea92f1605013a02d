"""API keys: each belongs to a user in a workspace, with scopes, optional expiry and quotas (requests per
minute, tokens per day). Create (secret shown once), list, revoke, authenticate, and count usage.

Only a SHA-256 of each secret is stored: secrets are 256-bit random tokens, so a fast hash is the right tool
(as GitHub and Stripe tokens do) and authentication stays one indexed lookup. Quota counters live in the key's
row and change with single conditional UPDATEs, so they are exact across processes and survive restarts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from shuken.errors import Forbidden, InvalidRequest, NotFound, QuotaExceeded, Unauthorized
from shuken.governance import events as ev
from shuken.governance.authz import Resource, require
from shuken.governance.directory import Directory, normalise_email
from shuken.governance.events import EventBus
from shuken.governance.identity import DEFAULT_SCOPES, SCOPES, Subject
from shuken.localisable import tr
from shuken.store import Database, rows_changed
from shuken.store.tables import ApiKeyRow, UserRow, utc_now

SECRET_PREFIX = "sk-shuken-"
DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '2w', '90m' → timedelta."""
    match = DURATION.match((text or "").strip().lower())
    if not match or int(match.group(1)) == 0:
        raise InvalidRequest(tr("Invalid duration '%(text)s'; use e.g. 90m, 12h, 30d or 2w.", text=text),
                             param="expires")
    return int(match.group(1)) * UNITS[match.group(2)]


@dataclass(frozen=True)
class ApiKey:
    id: int
    workspace: str
    user_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    rpm: int | None
    tpd: int | None
    email: str = ""

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(timezone.utc):
            return "expired"
        return "active"

    def as_dict(self) -> dict:
        stamp = lambda moment: moment.isoformat() if moment else None  # noqa: E731
        return {"id": self.id, "object": "api_key", "workspace": self.workspace, "user": self.email,
                "name": self.name, "prefix": self.prefix, "scopes": list(self.scopes), "status": self.status,
                "rpm": self.rpm, "tpd": self.tpd, "created_at": stamp(self.created_at),
                "expires_at": stamp(self.expires_at), "revoked_at": stamp(self.revoked_at),
                "last_used_at": stamp(self.last_used_at)}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _from_row(row: ApiKeyRow, email: str = "") -> ApiKey:
    return ApiKey(row.id, row.workspace, row.user_id, row.name, row.prefix, tuple(row.scopes or ()), row.created_at,
                  row.expires_at, row.revoked_at, row.last_used_at, row.rpm, row.tpd, email)


class KeyService:
    def __init__(self, db: Database, directory: Directory, bus: EventBus):
        self.db = db
        self.directory = directory
        self.bus = bus

    def create(self, subject: Subject, user_email: str, name: str, scopes: list[str] | tuple[str, ...] | None = None,
               expires_in: timedelta | None = None, rpm: int | None = None,
               tpd: int | None = None) -> tuple[ApiKey, str]:
        """Return the stored key and its secret; the secret cannot be recovered afterwards."""
        name = (name or "").strip()
        if not name:
            raise InvalidRequest(tr("A key needs a non-empty name."), param="name")
        scopes = sorted(set(scopes if scopes else DEFAULT_SCOPES))
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise InvalidRequest(tr("Unknown scope(s) %(unknown)s; choose from %(scopes)s.", unknown=", ".join(unknown),
                                    scopes=", ".join(SCOPES)),
                                 param="scopes")
        for label, value in (("rpm", rpm), ("tpd", tpd)):
            if value is not None and value < 1:
                raise InvalidRequest(tr("%(setting)s must be at least 1 (leave it out for no limit).", setting=label),
                                     param=label)
        email = normalise_email(user_email)
        # Even keys for oneself need the admin right: quotas are set per key, so a user minting their own
        # keys would multiply them (and a leaked narrow key would mint wide ones). Checked before the member is
        # looked up, so that a caller without it cannot learn who is a member (404) from who is not (403).
        require("keys:manage", Resource("key", subject.workspace, name), subject)
        member = self.directory.member(subject.workspace, email)
        if member.role == "owner" and subject.role != "owner":  # a key acts as its user: an admin would be owner
            raise Forbidden(tr("Only an owner can create a key for an owner."), code="forbidden")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = utc_now()
        row = ApiKeyRow(workspace=subject.workspace, user_id=member.user_id, name=name,
                        prefix=secret[: len(SECRET_PREFIX) + 6], secret_hash=_hash(secret), scopes=scopes,
                        created_at=now, expires_at=now + expires_in if expires_in else None, rpm=rpm, tpd=tpd,
                        minute_window=0, minute_requests=0, day_window=0, day_tokens=0)
        with self.db.session() as session:
            session.add(row)
            session.flush()
            self.bus.emit(ev.KeyCreated(workspace=subject.workspace, actor=subject.actor, resource=f"key:{row.id}",
                                        user=f"user:{member.user_id}", scopes=scopes, rpm=rpm, tpd=tpd,
                                        expires_at=row.expires_at.isoformat() if row.expires_at else None,
                                        content={"name": name}, content_user_id=member.user_id), session)
            return _from_row(row, email), secret

    def create_workspace(self, subject: Subject, slug: str, display_name: str = "") -> tuple[dict, str]:
        """A new workspace owned by the caller's user, and an admin key for them in it (secret shown once):
        keys are bound to one workspace, so without it the new workspace could not be reached over HTTP."""
        require("workspace:settings", Resource("workspace", subject.workspace, subject.workspace), subject)
        if subject.user_id is None:
            raise InvalidRequest(tr("The local operator creates workspaces with `shuken workspaces create`."))
        email = self.directory.email_of(subject.user_id)
        self.directory.create_workspace(slug, display_name, actor=subject.actor)
        owner = Subject.operator(slug)
        self.directory.add_existing_user(owner, email, "owner", actor=subject.actor)
        _key, secret = self.create(owner, email, f"{email} (workspace creator)", scopes=SCOPES)
        return self.directory.workspace(owner), secret

    def list(self, subject: Subject) -> list[ApiKey]:
        require("keys:manage", Resource("key", subject.workspace), subject)
        with self.db.session() as session:
            rows = session.execute(select(ApiKeyRow, UserRow.email).join(UserRow, UserRow.id == ApiKeyRow.user_id)
                                   .where(ApiKeyRow.workspace == subject.workspace).order_by(ApiKeyRow.id)).all()
            return [_from_row(row, email) for row, email in rows]

    def count_active(self) -> int:
        with self.db.session() as session:
            now = datetime.now(timezone.utc)
            return len(session.scalars(select(ApiKeyRow.id).where(
                ApiKeyRow.revoked_at.is_(None),
                ApiKeyRow.expires_at.is_(None) | (ApiKeyRow.expires_at > now))).all())

    def revoke(self, subject: Subject, ident: str) -> ApiKey:
        """Revoke by numeric id, name or displayed prefix (the latter two must be unambiguous)."""
        with self.db.session() as session:
            rows = [row for row in session.scalars(select(ApiKeyRow).where(
                        ApiKeyRow.workspace == subject.workspace, ApiKeyRow.revoked_at.is_(None)))
                    if str(row.id) == ident or row.name == ident or row.prefix == ident]
            if not rows:
                raise NotFound(tr("No active key matches '%(ident)s' in workspace '%(workspace)s'; "
                                  "see `shuken keys list`.", ident=ident, workspace=subject.workspace),
                               code="key_not_found")
            if len(rows) > 1:
                raise InvalidRequest(tr("'%(ident)s' matches several keys (%(ids)s); revoke by id instead.",
                                        ident=ident, ids=", ".join(str(r.id) for r in rows)))
            row = rows[0]
            if row.user_id != subject.user_id:
                require("keys:manage", Resource("key", subject.workspace, str(row.id)), subject)
                owner = self.directory.role_of(session, subject.workspace, row.user_id) == "owner"
                if owner and subject.role != "owner":
                    raise Forbidden(tr("Only an owner can revoke an owner's key."), code="forbidden")
            row.revoked_at = utc_now()
            self.bus.emit(ev.KeyRevoked(workspace=subject.workspace, actor=subject.actor, resource=f"key:{row.id}"),
                          session)
            return _from_row(row)

    # -- authentication and quotas --------------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> Subject:
        """The caller's Subject for a bearer secret: 401 if unknown, revoked or expired; 429 if over quota.
        Each call uses one unit of the requests-per-minute quota."""
        if not secret:
            raise Unauthorized(tr("Missing API key. Send it as 'Authorization: Bearer <key>'; "
                                  "create one with `shuken keys create`."))
        now = utc_now()
        with self.db.session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == _hash(secret)))
            if row is None or row.revoked_at is not None:
                raise Unauthorized(tr("Incorrect or revoked API key. Check the key, or create one with "
                                      "`shuken keys create`."))
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthorized(tr("This API key expired at %(expired)s UTC. "
                                      "Create a new one with `shuken keys create`.",
                                      expired=row.expires_at.strftime("%Y-%m-%d %H:%M")), code="expired_api_key")
            self._check_tokens(row, now)
            self._take_request(session, row, now)
            return self.directory.subject_for(session, row.workspace, row.user_id, key_id=row.id,
                                              scopes=frozenset(row.scopes or ()))

    @staticmethod
    def _check_tokens(row: ApiKeyRow, now: datetime) -> None:
        day = int(now.timestamp() // 86400)
        if row.tpd is not None and row.day_window == day and row.day_tokens >= row.tpd:
            retry = 86400 - int(now.timestamp()) % 86400
            raise QuotaExceeded(tr("This key used its %(tpd)s tokens for today (UTC); the quota resets in %(hours)s h "
                                   "%(minutes)s min.", tpd=row.tpd, hours=retry // 3600, minutes=retry % 3600 // 60),
                                code="tokens_per_day_exceeded", retry_after=retry)

    @staticmethod
    def _take_request(session: Session, row: ApiKeyRow, now: datetime) -> None:
        minute = int(now.timestamp() // 60)
        if row.rpm is None and row.last_used_at is not None and now - row.last_used_at < timedelta(minutes=1):
            return  # nothing to count: spare the write lock (last_used_at is kept to the minute)
        values: dict[str, object] = {"last_used_at": now}
        condition = ApiKeyRow.id == row.id
        if row.rpm is not None:
            # One conditional UPDATE: counts this request only if the minute's budget has room, atomically.
            values.update(minute_window=minute, minute_requests=case(
                (ApiKeyRow.minute_window == minute, ApiKeyRow.minute_requests + 1), else_=1))
            condition = condition & ((ApiKeyRow.minute_window != minute) | (ApiKeyRow.minute_requests < row.rpm))
        if rows_changed(session, update(ApiKeyRow).where(condition).values(**values)) == 0:
            retry = max(1, 60 - int(time.time()) % 60)
            raise QuotaExceeded(tr("This key is limited to %(rpm)s requests per minute; retry in %(retry)s s.",
                                   rpm=row.rpm, retry=retry),
                                code="requests_per_minute_exceeded", retry_after=retry)

    def add_tokens(self, key_id: int, tokens: int) -> None:
        if tokens <= 0:
            return
        day = int(datetime.now(timezone.utc).timestamp() // 86400)
        with self.db.session() as session:
            session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(
                day_window=day,
                day_tokens=case((ApiKeyRow.day_window == day, ApiKeyRow.day_tokens + tokens), else_=tokens)))

    def on_event(self, event: ev.Event, _session: Session | None = None) -> None:
        """Event-bus subscriber: a served request's tokens count against its key's daily quota."""
        if isinstance(event, ev.RequestServed) and event.key_id is not None:
            self.add_tokens(event.key_id, (event.prompt_tokens or 0) + (event.completion_tokens or 0))
