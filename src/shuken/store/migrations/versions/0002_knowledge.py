"""Know: collections, grants, documents, chunks, vectors, duplicate fingerprints, durable ingest jobs; key groups.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _cascade(target: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete="CASCADE")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("groups", sa.JSON, nullable=False, server_default="[]"))

    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("restricted", sa.Boolean, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_by_key", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace", "name"),
        sqlite_autoincrement=True,  # ids never reused: caches and citations cannot point at newer data
    )
    op.create_index("ix_collections_workspace", "collections", ["workspace"])
    op.create_table(
        "collection_grants",
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), primary_key=True),
        sa.Column("group_name", sa.String(200), primary_key=True),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("pages", sa.Integer, nullable=True),
        sa.Column("ocr_pages", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("duplicate_paragraphs", sa.Integer, nullable=False),
        sa.Column("created_by_key", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("collection_id", "name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_documents_collection_id", "documents", ["collection_id"])
    op.create_index("ix_documents_content_hash", "documents", ["content_hash"])
    op.create_table(
        "chunks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.Integer, _cascade("documents.id"), nullable=False),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("heading", sa.Text, nullable=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("page", sa.Integer, nullable=True),
        sa.Column("page_end", sa.Integer, nullable=True),
        sa.Column("start_offset", sa.Integer, nullable=False),
        sa.Column("end_offset", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_chunks_document_id", "chunks", ["document_id"])
    op.create_index("ix_chunks_collection_id", "chunks", ["collection_id"])
    op.create_table(
        "chunk_vectors",
        sa.Column("chunk_id", sa.Integer, _cascade("chunks.id"), primary_key=True),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_chunk_vectors_collection_id", "chunk_vectors", ["collection_id"])
    op.create_table(
        "paragraph_fingerprints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("document_id", sa.Integer, _cascade("documents.id"), nullable=False),
        sa.Column("exact_hash", sa.String(64), nullable=False),
        sa.Column("minhash", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_fingerprints_exact", "paragraph_fingerprints", ["collection_id", "exact_hash"])
    op.create_index("ix_paragraph_fingerprints_document_id", "paragraph_fingerprints", ["document_id"])
    op.create_table(
        "paragraph_bands",
        sa.Column("fingerprint_id", sa.Integer, _cascade("paragraph_fingerprints.id"), primary_key=True),
        sa.Column("band", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("band_hash", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_bands_lookup", "paragraph_bands", ["collection_id", "band", "band_hash"])
    op.create_table(
        "duplicate_sources",
        sa.Column("document_id", sa.Integer, _cascade("documents.id"), primary_key=True),
        sa.Column("source_document_id", sa.Integer, _cascade("documents.id"), primary_key=True),
        sa.Column("paragraphs", sa.Integer, nullable=False),
    )
    op.create_index("ix_duplicate_sources_source_document_id", "duplicate_sources", ["source_document_id"])
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("collection_id", sa.Integer, _cascade("collections.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_by_key", sa.Integer, nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_ingest_jobs_collection_id", "ingest_jobs", ["collection_id"])
    op.create_index("ix_ingest_jobs_status", "ingest_jobs", ["status"])
    op.create_table(
        "ingest_job_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.String(32), _cascade("ingest_jobs.id"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("force", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("document_id", sa.Integer, nullable=True),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("ocr_pages", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
    )
    op.create_index("ix_ingest_job_files_job_id", "ingest_job_files", ["job_id"])
    if op.get_bind().dialect.name == "sqlite":
        # Keyword index over our own normalised terms (space-separated), so FTS5 must split on spaces only:
        # every other character class counts as part of a term. rowid = chunks.id.
        op.execute(
            "CREATE VIRTUAL TABLE chunk_terms USING fts5(terms, "
            "tokenize=\"unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Co Cn Cs'\")"
        )
        # Document frequency per term, so a query can skip terms that occur nearly everywhere.
        op.execute("CREATE VIRTUAL TABLE chunk_terms_vocab USING fts5vocab(chunk_terms, 'row')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE chunk_terms_vocab")
        op.execute("DROP TABLE chunk_terms")
    for table in ("ingest_job_files", "ingest_jobs", "duplicate_sources", "paragraph_bands",
                  "paragraph_fingerprints", "chunk_vectors", "chunks", "documents", "collection_grants",
                  "collections"):
        op.drop_table(table)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("groups")
