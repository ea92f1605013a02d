"""Conversations of the web chat: each belongs to one user in one workspace and is visible to that user
only. Stored so a user can come back to them; retention and erasure remove them like any personal data."""

from __future__ import annotations

import builtins

from sqlalchemy import delete, select

from shuken.chat.context import fit_history
from shuken.errors import InvalidRequest, NotFound
from shuken.governance.authz import Resource, require
from shuken.governance.identity import Subject
from shuken.localisable import tr
from shuken.store import Database
from shuken.store.tables import ConversationMessageRow, ConversationRow, utc_now

TITLE_LENGTH = 80
MAX_MESSAGE_CHARS = 20_000


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def conversation_dict(row: ConversationRow) -> dict:
    return {"id": row.id, "title": row.title, "model": row.model, "collections": list(row.collections or []),
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}


def message_dict(row: ConversationMessageRow) -> dict:
    return {"id": row.id, "role": row.role, "content": row.content, "model": row.model,
            "citations": row.citations or [], "stopped": row.stopped, "created_at": row.created_at.isoformat()}


class ConversationService:
    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def _require(subject: Subject) -> None:
        require("chat", Resource("conversation", subject.workspace), subject)
        if subject.user_id is None:
            raise InvalidRequest(tr("Conversations belong to a user; sign in as one."), code="no_user")

    def _own(self, session, subject: Subject, conversation_id: int) -> ConversationRow:
        self._require(subject)
        row = session.get(ConversationRow, conversation_id)
        # Someone else's conversation is reported exactly like a missing one: its existence is not revealed.
        if row is None or row.user_id != subject.user_id or row.workspace != subject.workspace:
            raise NotFound(tr("No conversation %(id)s.", id=conversation_id), code="conversation_not_found")
        return row

    def list(self, subject: Subject, limit: int = 200) -> list[dict]:
        self._require(subject)
        with self.db.session() as session:
            rows = session.scalars(select(ConversationRow).where(
                ConversationRow.workspace == subject.workspace, ConversationRow.user_id == subject.user_id)
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc()).limit(limit))
            return [conversation_dict(row) for row in rows]

    def create(self, subject: Subject, title: str = "", model: str | None = None,
               collections: builtins.list[str] | None = None) -> dict:
        self._require(subject)
        now = utc_now()
        with self.db.session() as session:
            row = ConversationRow(workspace=subject.workspace, user_id=subject.user_id, title=title_from(title),
                                  created_at=now, updated_at=now, model=model, collections=collections or [])
            session.add(row)
            session.flush()
            return conversation_dict(row)

    def get(self, subject: Subject, conversation_id: int) -> dict:
        with self.db.session() as session:
            row = self._own(session, subject, conversation_id)
            messages = session.scalars(select(ConversationMessageRow).where(
                ConversationMessageRow.conversation_id == row.id).order_by(ConversationMessageRow.id))
            return {**conversation_dict(row), "messages": [message_dict(m) for m in messages]}

    def rename(self, subject: Subject, conversation_id: int, title: str) -> dict:
        title = title_from(title)
        if not title:
            raise InvalidRequest(tr("A conversation needs a title."), param="title")
        with self.db.session() as session:
            row = self._own(session, subject, conversation_id)
            row.title = title
            return conversation_dict(row)

    def delete(self, subject: Subject, conversation_id: int) -> None:
        with self.db.session() as session:
            row = self._own(session, subject, conversation_id)
            session.execute(delete(ConversationMessageRow).where(ConversationMessageRow.conversation_id == row.id))
            session.delete(row)

    # -- turns ----------------------------------------------------------------------------------------------
    def begin_turn(self, subject: Subject, conversation_id: int, text: str | None, model: str,
                   collections: builtins.list[str]) -> int | None:
        """Record the user's message and the choices made. With `text` None the last answer is regenerated: it
        stays stored until the new one replaces it (its id is returned), so a regeneration that fails to start
        loses nothing."""
        with self.db.session() as session:
            row = self._own(session, subject, conversation_id)
            row.model, row.collections, row.updated_at = model, collections, utc_now()
            replaces = None
            if text is None:
                last = session.scalar(select(ConversationMessageRow).where(
                    ConversationMessageRow.conversation_id == row.id).order_by(ConversationMessageRow.id.desc())
                    .limit(1))
                if last is None:
                    raise InvalidRequest(tr("There is nothing to regenerate yet."), code="nothing_to_regenerate")
                if last.role == "assistant":
                    replaces = last.id
            else:
                text = text.strip()
                if not text:
                    raise InvalidRequest(tr("Type a message first."), param="content")
                if len(text) > MAX_MESSAGE_CHARS:
                    raise InvalidRequest(tr("A message may have at most %(limit)s characters.",
                                            limit=MAX_MESSAGE_CHARS),
                                         param="content")
                session.add(ConversationMessageRow(conversation_id=row.id, role="user", content=text,
                                                   created_at=utc_now()))
                if not row.title:
                    row.title = title_from(text)
                session.flush()
            if session.scalar(select(ConversationMessageRow.role).where(
                    ConversationMessageRow.conversation_id == row.id, ConversationMessageRow.id != replaces)
                    .order_by(ConversationMessageRow.id.desc()).limit(1)) != "user":
                raise InvalidRequest(tr("There is no question to answer."), code="nothing_to_regenerate")
            return replaces

    def history(self, subject: Subject, conversation_id: int, budget: int,
                replaces: int | None = None) -> builtins.list[dict]:
        """The messages to send to the model for the question last asked (leaving out the answer being
        replaced): the newest that fit `budget` estimated tokens (`context.fit_history`). Older ones stay
        stored but fall out of the prompt."""
        with self.db.session() as session:
            row = self._own(session, subject, conversation_id)
            newest_first = session.execute(select(ConversationMessageRow.role, ConversationMessageRow.content)
                                           .where(ConversationMessageRow.conversation_id == row.id,
                                                  ConversationMessageRow.id != replaces)
                                           .order_by(ConversationMessageRow.id.desc()).execution_options(yield_per=50))
            messages = fit_history(({"role": role, "content": content} for role, content in newest_first), budget)
            newest_first.close()  # read only as far back as fits
            if not messages or messages[-1]["role"] != "user":
                raise InvalidRequest(tr("There is no question to answer."), code="nothing_to_regenerate")
            return messages

    def finish_turn(self, subject: Subject, conversation_id: int, content: str, model: str,
                    citations: builtins.list[dict], stopped: bool,
                    replaces: int | None = None) -> tuple[dict, dict] | None:
        """Store the answer (also a stopped or partial one, so what the user saw is kept), in place of the
        regenerated one if any: the message and its conversation, or None if the conversation is gone."""
        with self.db.session() as session:
            try:
                row = self._own(session, subject, conversation_id)
            except NotFound:
                return None
            if replaces is not None:
                session.execute(delete(ConversationMessageRow).where(
                    ConversationMessageRow.id == replaces, ConversationMessageRow.conversation_id == row.id))
            message = ConversationMessageRow(conversation_id=row.id, role="assistant", content=content, model=model,
                                             citations=citations, stopped=stopped, created_at=utc_now())
            session.add(message)
            row.updated_at = utc_now()
            session.flush()
            return message_dict(message), conversation_dict(row)
