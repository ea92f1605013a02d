"""Web sign-in sessions: a random token in an HTTP-only cookie, its SHA-256 in `web_sessions`, a CSRF token
per session, idle and absolute expiry. Passwords, lock-out and the audit of every attempt are the directory's.

A session names a user and a workspace, never a role: the Subject is rebuilt from the membership on every
request, so a demotion, removal or erasure takes effect at the user's next click.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from shuken.errors import Unauthorized
from shuken.governance import events as ev
from shuken.governance.directory import Directory
from shuken.governance.events import EventBus
from shuken.governance.identity import Subject
from shuken.localisable import tr
from shuken.store import Database
from shuken.store.tables import UserRow, WebSessionRow, utc_now

TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often, not on every request


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()



@dataclass(frozen=True)
class WebSession:
    subject: Subject
    csrf_token: str
    email: str
    display_name: str
    expires_at: datetime


class SessionService:
    def __init__(self, db: Database, directory: Directory, bus: EventBus, idle: timedelta, absolute: timedelta):
        self.db = db
        self.directory = directory
        self.bus = bus
        self.idle = idle
        self.absolute = absolute

    def sign_in(self, workspace: str, email: str, password: str) -> str:
        """The new session's cookie token, or Unauthorized (audited and counted towards lock-out)."""
        subject = self.directory.check_password(workspace, email, password)
        token, now = secrets.token_urlsafe(32), utc_now()
        with self.db.session() as session:
            session.add(WebSessionRow(token_hash=_hash(token), workspace=subject.workspace, user_id=subject.user_id,
                                      csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now,
                                      expires_at=now + self.absolute))
            # Expired sessions of anyone are swept here rather than by a timer: sign-ins are rare and cheap.
            session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))
        return token

    def resolve(self, token: str | None) -> WebSession:
        """The session a cookie names, with the user's current role and groups; Unauthorized if it is unknown,
        expired, idle too long, or the user lost their membership or was disabled (the row is then deleted)."""
        if not token:
            raise Unauthorized(tr("Please sign in."), code="not_signed_in")
        now = utc_now()
        ended: Unauthorized | None = None
        with self.db.session() as session:
            row = session.get(WebSessionRow, _hash(token))
            if row is None:
                raise Unauthorized(tr("Your session has ended; please sign in again."), code="session_expired")
            user = session.get(UserRow, row.user_id)
            if row.expires_at <= now or row.last_seen_at + self.idle <= now:
                ended = Unauthorized(tr("Your session has ended; please sign in again."), code="session_expired")
            elif user is None or user.disabled_at is not None:
                ended = Unauthorized(tr("This account is disabled."), code="session_expired")
            else:
                try:
                    subject = self.directory.subject_for(session, row.workspace, row.user_id)
                except Unauthorized as exc:
                    ended = exc
                else:
                    if now - row.last_seen_at >= TOUCH_EVERY:
                        row.last_seen_at = now
                    viewer = WebSession(subject, row.csrf_token, user.email, user.display_name or user.email,
                                        row.expires_at)
            if ended is not None:
                session.delete(row)  # committed as the block ends normally; the error is raised after it
        if ended is not None:
            raise ended
        return viewer

    def sign_out(self, token: str | None) -> None:
        if not token:
            return
        with self.db.session() as session:
            row = session.get(WebSessionRow, _hash(token))
            if row is None:
                return
            actor = f"user:{row.user_id}"
            self.bus.emit(ev.SignedOut(workspace=row.workspace, actor=actor, resource=actor), session)
            session.delete(row)

