"""Typed governance events and the one sink they pass through.

Services emit events; they never write audit rows themselves. Subscribers (the audit chain, quota usage,
training-data capture) receive each event, inside the emitter's database transaction when it has one, so
an acknowledged change and its audit record are committed together.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar
from collections.abc import Callable

from sqlalchemy.orm import Session

log = logging.getLogger("shuken.events")
SYSTEM_WORKSPACE = "_system"  # chain for events that belong to no workspace (e.g. refused egress)


def detail(default: Any = MISSING, *, factory: Callable[[], Any] | None = None, key: str | None = None,
           omit_none: bool = False) -> Any:
    """A field of an event that goes into its audit record's `details` (under `key`, by default its own name;
    left out when None if `omit_none`). Only ids, counts and short facts: the chain cannot be erased."""
    metadata = {"detail": key, "omit_none": omit_none}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event says: where, who, to what, how it went. Each event type adds its own named fields;
    those declared with `detail()` make up `details`, the rest (e.g. captured text) never reach the chain."""

    action: ClassVar[str] = "event"

    workspace: str
    actor: str
    resource: str
    outcome: str = "success"
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    content: dict | None = None  # prompts, answers, names: kept only if the workspace's policy says so
    content_user_id: int | None = None  # whose content it is, for erasure

    @property
    def details(self) -> dict[str, Any]:
        """The event's own facts for the audit record, derived from its `detail()` fields."""
        facts: dict[str, Any] = {}
        for spec in fields(self):
            if "detail" not in spec.metadata:
                continue
            value = getattr(self, spec.name)
            if value is None and spec.metadata["omit_none"]:
                continue
            facts[spec.metadata["detail"] or spec.name] = value
        return facts


@dataclass(frozen=True, kw_only=True)
class RequestServed(Event):
    """A /v1 generation or embedding call (or a web-chat turn) finished, failed or was cancelled."""

    action: ClassVar[str] = "request.served"
    endpoint: str = detail("chat")
    status: int = detail()
    request_id: str = detail()
    started_at: str = detail()  # ISO 8601; consented capture compares it with the consent's time
    pii_flags: dict[str, dict[str, int]] = field(default_factory=dict)  # stage → entity type → count
    key_id: int | None = None
    captured_messages: list | None = None  # the conversation, for training capture (never stored in the chain)
    captured_completion: str | None = None

    @property
    def details(self) -> dict[str, Any]:
        return {**super().details, **{f"pii_flags_{stage}": counts for stage, counts in self.pii_flags.items()}}


@dataclass(frozen=True, kw_only=True)
class WorkspaceCreated(Event):
    """A workspace was created."""

    action: ClassVar[str] = "workspace.created"


@dataclass(frozen=True, kw_only=True)
class SettingsChanged(Event):
    """A workspace's policy changed."""

    action: ClassVar[str] = "settings.changed"
    changed: dict[str, dict[str, Any]] = detail()  # setting → {"from": old, "to": new}


@dataclass(frozen=True, kw_only=True)
class UserCreated(Event):
    """A user account was created (the e-mail is content, never a detail)."""

    action: ClassVar[str] = "user.created"


@dataclass(frozen=True, kw_only=True)
class LoginAttempted(Event):
    """A sign-in attempt (outcome success or failure, with the reason it failed)."""

    action: ClassVar[str] = "login"
    reason: str | None = detail(None, omit_none=True)


@dataclass(frozen=True, kw_only=True)
class SignedOut(Event):
    """A web session was ended by its user."""

    action: ClassVar[str] = "logout"


@dataclass(frozen=True, kw_only=True)
class PasswordChanged(Event):
    """A user's sign-in password was set; every web session of theirs ended."""

    action: ClassVar[str] = "password.changed"


@dataclass(frozen=True, kw_only=True)
class RoleChanged(Event):
    """A user's role in a workspace was set (`after` None: they were removed from it)."""

    action: ClassVar[str] = "role.changed"
    before: str | None = detail(key="from")
    after: str | None = detail(key="to")


@dataclass(frozen=True, kw_only=True)
class GroupsChanged(Event):
    """A user's groups in a workspace were set."""

    action: ClassVar[str] = "groups.changed"
    before: list[str] = detail(key="from")
    after: list[str] = detail(key="to")


@dataclass(frozen=True, kw_only=True)
class KeyCreated(Event):
    """An API key was created (its name is content)."""

    action: ClassVar[str] = "key.created"
    user: str = detail()  # user:<id>, whose key it is
    scopes: list[str] = detail()
    rpm: int | None = detail()
    tpd: int | None = detail()
    expires_at: str | None = detail()


@dataclass(frozen=True, kw_only=True)
class KeyRevoked(Event):
    """An API key was revoked (by an admin, or because its user was erased)."""

    action: ClassVar[str] = "key.revoked"
    reason: str | None = detail(None, omit_none=True)


@dataclass(frozen=True, kw_only=True)
class CollectionCreated(Event):
    """A knowledge collection was created (restricted to `groups`, if any)."""

    action: ClassVar[str] = "collection.created"
    groups: list[str] = detail(factory=list)


@dataclass(frozen=True, kw_only=True)
class CollectionDeleted(Event):
    """A knowledge collection was deleted with its documents."""

    action: ClassVar[str] = "collection.deleted"
    documents: int = detail()
    chunks: int = detail()


@dataclass(frozen=True, kw_only=True)
class DocumentIngested(Event):
    """A document was indexed (no file hash: the chain is unerasable; the name is content)."""

    action: ClassVar[str] = "document.ingested"
    collection: int = detail()
    status: str = detail()
    chunks: int = detail()
    pages: int | None = detail()


@dataclass(frozen=True, kw_only=True)
class DocumentDeleted(Event):
    """A document was deleted."""

    action: ClassVar[str] = "document.deleted"
    collection: int = detail()
    chunks: int = detail()


@dataclass(frozen=True, kw_only=True)
class ConsentChanged(Event):
    """A user granted or withdrew consent to training capture."""

    action: ClassVar[str] = "consent.changed"
    granted: bool = detail()
    consent_event: int = detail()
    deleted_records: int = detail()  # training records withdrawn with the consent
    recorded_by: str = detail()  # "the user", or the operator who recorded it for them


@dataclass(frozen=True, kw_only=True)
class DataExported(Event):
    """Data left Shuken through an export (training data, the audit log, a compliance report)."""

    action: ClassVar[str] = "data.exported"
    records: int | None = detail(None, omit_none=True)
    format: str | None = detail(None, omit_none=True)


@dataclass(frozen=True, kw_only=True)
class SubjectErased(Event):
    """A data subject's content was erased from a workspace."""

    action: ClassVar[str] = "subject.erased"
    subject: str = detail()  # user:<id>
    counts: dict[str, int] = detail()
    account: str = detail()  # what became of the account row


@dataclass(frozen=True, kw_only=True)
class RetentionSwept(Event):
    """A retention sweep ran (its counts may be zero)."""

    action: ClassVar[str] = "retention.swept"
    limits_days: dict[str, int | None] = detail()
    counts: dict[str, int] = detail()
    as_of: str = detail()


@dataclass(frozen=True, kw_only=True)
class EgressRefused(Event):
    """The egress guard refused an outbound connection."""

    action: ClassVar[str] = "egress.refused"
    kind: str = detail()
    reason: str = detail()


Subscriber = Callable[[Event, Session | None], Any]


class EventBus:
    """Fan-out to subscribers. `emit` runs them now (in the caller's transaction, if given); `emit_later` hands
    the event to one background thread, for callers on the event loop that must not wait for the database."""

    def __init__(self):
        self._subscribers: list[Subscriber] = []
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event, session: Session | None = None) -> str | None:
        """Deliver to every subscriber; returns the audit record's hash (the first non-None result)."""
        result = None
        for subscriber in self._subscribers:
            value = subscriber(event, session)
            result = result if result is not None else value
        return result

    def emit_later(self, event: Event | Callable[[], Event]) -> None:
        """Deliver on the background thread. A callable is called there to build the event, so costly
        preparation (e.g. PII redaction of a prompt) never runs on the caller's thread."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._drain, name="shuken-events", daemon=True)
                self._worker.start()
        self._queue.put(event)

    def _drain(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is None:
                    return
                if callable(event):
                    event = event()
                for subscriber in self._subscribers:  # the request is answered: each gets its chance
                    try:
                        subscriber(event, None)
                    except Exception:
                        log.exception("event subscriber failed", extra={"action": event.action})
            except Exception:  # an event that cannot even be built must not stop the ones after it
                log.exception("event could not be built")
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every event handed to emit_later has been delivered."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.join()

    def close(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=30)
