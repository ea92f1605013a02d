"""Ingestion: a file's error also keeps the translatable message it was made from (template and values), so
the web UI can show it in the viewer's language; `error` keeps the English for the API and CLI.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_job_files") as batch:
        batch.add_column(sa.Column("error_message", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_job_files") as batch:
        batch.drop_column("error_message")
