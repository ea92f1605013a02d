"""Web UI: signed-in browser sessions; a conversation remembers its model and collections; an answer keeps
its citations and whether it was stopped.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("workspace", sa.String(100), sa.ForeignKey("workspaces.slug", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_web_sessions_workspace", "web_sessions", ["workspace"])
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("collections", sa.JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("conversation_messages") as batch:
        batch.add_column(sa.Column("citations", sa.JSON, nullable=True))
        batch.add_column(sa.Column("stopped", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.drop_column("stopped")
        batch.drop_column("citations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("collections")
        batch.drop_column("model")
    op.drop_index("ix_web_sessions_expires_at", "web_sessions")
    op.drop_index("ix_web_sessions_user_id", "web_sessions")
    op.drop_index("ix_web_sessions_workspace", "web_sessions")
    op.drop_table("web_sessions")
