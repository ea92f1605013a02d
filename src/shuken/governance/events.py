"""Typed governance events and the one sink they pass through.

Services emit events; they never write audit rows themselves. Subscribers (the audit chain, quota usage,
training-data capture) receive each event, inside the emitter's database transaction when it has one, so
an acknowledged change and its audit record are committed together.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from sqlalchemy.orm import Session

log = logging.getLogger("shuken.events")
SYSTEM_WORKSPACE = "_system"  # chain for events that belong to no workspace (e.g. refused egress)


@dataclass(frozen=True, kw_only=True)
class Event:
    action: ClassVar[str] = "event"

    workspace: str
    actor: str
    resource: str
    outcome: str = "success"
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    details: dict = field(default_factory=dict)  # ids and counts only: this goes into the unerasable chain
    content: dict | None = None  # prompts, answers, names: kept only if the workspace's policy says so
    content_user_id: int | None = None  # whose content it is, for erasure


def _event(name: str, action: str, doc: str) -> type[Event]:
    """An event type that adds nothing to Event but its action name."""
    return dataclass(frozen=True, kw_only=True)(type(name, (Event,), {"action": action, "__doc__": doc,
                                                                      "__module__": __name__}))


@dataclass(frozen=True, kw_only=True)
class RequestServed(Event):
    """A /v1 generation or embedding call finished (or failed)."""

    action: ClassVar[str] = "request.served"
    key_id: int | None = None
    endpoint: str = "chat"
    captured_messages: list | None = None  # the conversation, for training capture (never stored in the chain)
    captured_completion: str | None = None


WorkspaceCreated = _event("WorkspaceCreated", "workspace.created", "A workspace was created.")
SettingsChanged = _event("SettingsChanged", "settings.changed", "A workspace's policy changed.")
UserCreated = _event("UserCreated", "user.created", "A user account was created.")
LoginAttempted = _event("LoginAttempted", "login", "A sign-in attempt (outcome success or failure).")
SignedOut = _event("SignedOut", "logout", "A web session was ended by its user.")
PasswordChanged = _event("PasswordChanged", "password.changed", "A user's sign-in password was set; every web "
                         "session of theirs ended.")
RoleChanged = _event("RoleChanged", "role.changed", "A user's role in a workspace was set.")
GroupsChanged = _event("GroupsChanged", "groups.changed", "A user's groups in a workspace were set.")
KeyCreated = _event("KeyCreated", "key.created", "An API key was created.")
KeyRevoked = _event("KeyRevoked", "key.revoked", "An API key was revoked.")
CollectionCreated = _event("CollectionCreated", "collection.created", "A knowledge collection was created.")
CollectionDeleted = _event("CollectionDeleted", "collection.deleted", "A knowledge collection was deleted.")
DocumentIngested = _event("DocumentIngested", "document.ingested", "A document was indexed.")
DocumentDeleted = _event("DocumentDeleted", "document.deleted", "A document was deleted.")
ConsentChanged = _event("ConsentChanged", "consent.changed", "A user granted or withdrew consent to training capture.")
DataExported = _event("DataExported", "data.exported", "Data left Shuken through an export command.")
SubjectErased = _event("SubjectErased", "subject.erased", "A data subject's content was erased.")
RetentionSwept = _event("RetentionSwept", "retention.swept", "A retention sweep ran (its counts may be zero).")
EgressRefused = _event("EgressRefused", "egress.refused", "The egress guard refused an outbound connection.")

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
