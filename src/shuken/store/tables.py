"""ORM tables. Portable types only (no SQLite-specific SQL) so PostgreSQL works unchanged."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    """Now, timezone-aware, as every UTCDateTime column wants it."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no offset and would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use datetime.now(timezone.utc)")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


# --- Govern: workspaces, users, groups, keys, audit, consent, conversations -------------------------------


class WorkspaceRow(Base):
    """A tenant. Its slug is its permanent id (collections and audit chains refer to it)."""

    __tablename__ = "workspaces"

    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    policy: Mapped[dict] = mapped_column(JSON, default=dict)  # governance.policy.WorkspacePolicy
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)  # stored lower-cased
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # argon2id; None: no sign-in
    # An external identity (OIDC issuer + subject) can be linked later without a schema change of keys.
    external_id: Mapped[str | None] = mapped_column(String(500), nullable=True, unique=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MembershipRow(Base):
    """A user's role in one workspace (owner, admin, member, viewer, auditor)."""

    __tablename__ = "memberships"

    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupMemberRow(Base):
    """Groups live inside a workspace; restricted collections are shared with group names."""

    __tablename__ = "group_members"

    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Quotas and their live counters (kept here so they survive a restart and every process sees them).
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpd: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    minute_window: Mapped[int] = mapped_column(BigInteger, default=0)  # minutes since the epoch
    minute_requests: Mapped[int] = mapped_column(Integer, default=0)
    day_window: Mapped[int] = mapped_column(Integer, default=0)  # days since the epoch (UTC)
    day_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditEventRow(Base):
    """Append-only. Each row carries the SHA-256 of its canonical form, chained per workspace.
    It holds ids and counts, never content: content lives in audit_content, referenced by `content_ref`."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("workspace", "seq"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(100), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[str] = mapped_column(String(40), index=True)  # ISO-8601 UTC, exactly as hashed
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    resource: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    content_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The last record of each chain: the row appenders lock, and a cross-check against tail truncation."""

    __tablename__ = "audit_heads"

    workspace: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditContentRow(Base):
    """Erasable content of an audit record (prompt, answer, file name). Its ref is a salted hash, so once the
    row (and its salt) is gone the chain reveals nothing about what it said."""

    __tablename__ = "audit_content"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(100), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    salt: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditCheckpointRow(Base):
    """A signed statement "chain W had record N with hash H at time T" (Ed25519; the key lives outside the DB)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(100), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(40))
    public_key: Mapped[str] = mapped_column(String(64))  # hex of the raw Ed25519 public key
    signature: Mapped[str] = mapped_column(String(128))


class ConsentEventRow(Base):
    """A user's grant or withdrawal of consent to have their conversations used as training data."""

    __tablename__ = "consent_events"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the audit record of this change


class TrainingRecordRow(Base):
    """One captured conversation turn, allowed by exactly one consent grant."""

    __tablename__ = "training_records"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    consent_event_id: Mapped[int] = mapped_column(ForeignKey("consent_events.id"), index=True)
    model: Mapped[str] = mapped_column(String(200))
    messages: Mapped[list] = mapped_column(JSON)
    completion: Mapped[str] = mapped_column(Text)
    lineage: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # What the user last picked for this conversation in the web chat.
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    collections: Mapped[list] = mapped_column(JSON, default=list)


class ConversationMessageRow(Base):
    __tablename__ = "conversation_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The sources an answer was grounded on (numbered as in its [n] markers), and whether the user stopped it.
    citations: Mapped[list | None] = mapped_column(JSON, nullable=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSessionRow(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored, so a database leak signs no one in."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace: Mapped[str] = mapped_column(ForeignKey("workspaces.slug", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ModelRow(Base):
    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    engine: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    format: Mapped[str] = mapped_column(String(32))
    model_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    license: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- Know: collections, documents, chunks, durable ingestion jobs -------------------------------------------


class CollectionRow(Base):
    __tablename__ = "collections"
    # AUTOINCREMENT: ids are never reused, so a cached vector matrix or a citation's chunk id can never
    # silently point at a newer collection's, document's or chunk's data.
    __table_args__ = (UniqueConstraint("workspace", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace: Mapped[str] = mapped_column(String(100), default="default", index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # A restricted collection is readable only by the groups in collection_grants (and workspace admins).
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on every change to its chunks, so in-memory vector matrices know when to reload.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_user: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CollectionGrantRow(Base):
    __tablename__ = "collection_grants"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))  # the original file name (or relative path)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ocr_pages: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_paragraphs: Mapped[int] = mapped_column(Integer, default=0)
    created_by_key: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_user: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    heading: Mapped[str | None] = mapped_column(Text, nullable=True)
    language: Mapped[str] = mapped_column(String(16))
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    page_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)


class ChunkVectorRow(Base):
    __tablename__ = "chunk_vectors"

    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length


class ParagraphFingerprintRow(Base):
    """One indexed paragraph's exact hash and MinHash, for near-duplicate detection across a collection."""

    __tablename__ = "paragraph_fingerprints"
    __table_args__ = (Index("ix_fingerprints_exact", "collection_id", "exact_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    exact_hash: Mapped[str] = mapped_column(String(64))
    minhash: Mapped[bytes] = mapped_column(LargeBinary)


class ParagraphBandRow(Base):
    """Locality-sensitive hashing bands of a fingerprint: equal band hashes make near-duplicate candidates."""

    __tablename__ = "paragraph_bands"
    __table_args__ = (Index("ix_bands_lookup", "collection_id", "band", "band_hash"),)

    fingerprint_id: Mapped[int] = mapped_column(
        ForeignKey("paragraph_fingerprints.id", ondelete="CASCADE"), primary_key=True)
    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    band_hash: Mapped[int] = mapped_column(BigInteger)


class DuplicateSourceRow(Base):
    """Document A skipped paragraphs already indexed from document B; deleting B must re-index A."""

    __tablename__ = "duplicate_sources"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    source_document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True)
    paragraphs: Mapped[int] = mapped_column(Integer)


class IngestJobRow(Base):
    __tablename__ = "ingest_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | done | failed
    submitted_by_key: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submitted_by_user: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class IngestJobFileRow(Base):
    __tablename__ = "ingest_job_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("ingest_jobs.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))  # document name in the collection
    path: Mapped[str] = mapped_column(Text)  # where to read the bytes (stored upload or the user's file)
    status: Mapped[str] = mapped_column(String(16))  # pending | indexed | replaced | unchanged | error
    force: Mapped[bool] = mapped_column(Boolean, default=False)  # re-index even if unchanged
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # in English
    # The error as a translatable Message, {"template": ..., "values": {name: text}}; None if it is not one.
    error_message: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    document_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    ocr_pages: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
