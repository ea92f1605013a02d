"""Governance: workspaces, users, memberships and groups; keys owned by a user in a workspace with scopes,
expiry and quotas; the audit chain; consent, training records and conversations.

Existing keys keep working: each becomes the key of a user `key-<id>@migrated.invalid` in workspace
`default` (admin keys → admin role, others → member), with the groups the key carried.

Revision ID: 0004
Revises: 0003
"""

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ALL_SCOPES = ["chat", "knowledge:read", "knowledge:write", "admin", "audit:read"]
MEMBER_SCOPES = ["chat", "knowledge:read", "knowledge:write"]
TZ = sa.DateTime(timezone=True)


def _identity_tables() -> None:
    op.create_table(
        "workspaces",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("external_id", sa.String(500), nullable=True, unique=True),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("disabled_at", TZ, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)
    op.create_table(
        "memberships",
        sa.Column("workspace", sa.String(100), sa.ForeignKey("workspaces.slug", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])
    op.create_table(
        "group_members",
        sa.Column("workspace", sa.String(100), sa.ForeignKey("workspaces.slug", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("group_name", sa.String(200), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"])


def _audit_tables() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace", sa.String(100), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("prompt_tokens", sa.Integer, nullable=True),
        sa.Column("completion_tokens", sa.Integer, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("content_ref", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("workspace", "seq"),
        sqlite_autoincrement=True,
    )
    for column in ("workspace", "occurred_at", "action"):
        op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    op.create_table(
        "audit_heads",
        sa.Column("workspace", sa.String(100), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_content",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("workspace", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    for column in ("workspace", "user_id", "created_at"):
        op.create_index(f"ix_audit_content_{column}", "audit_content", [column])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace", sa.String(100), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_checkpoints_workspace", "audit_checkpoints", ["workspace"])


def _owned() -> list[sa.Column]:
    """The workspace and user columns of a table holding one person's data (fresh objects for each table)."""
    return [
        sa.Column("workspace", sa.String(100), sa.ForeignKey("workspaces.slug", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    ]


def _data_tables() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, primary_key=True),
        *_owned(),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("audit_hash", sa.String(64), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "training_records",
        sa.Column("id", sa.Integer, primary_key=True),
        *_owned(),
        sa.Column("consent_event_id", sa.Integer, sa.ForeignKey("consent_events.id"), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("completion", sa.Text, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        *_owned(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    for table in ("consent_events", "training_records", "conversations"):
        op.create_index(f"ix_{table}_workspace", table, ["workspace"])
        op.create_index(f"ix_{table}_user_id", table, ["user_id"])
    op.create_index("ix_training_records_consent_event_id", "training_records", ["consent_event_id"])
    op.create_index("ix_training_records_created_at", "training_records", ["created_at"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_index("ix_conversation_messages_conversation_id", "conversation_messages", ["conversation_id"])


def _migrate_keys(bind) -> dict[int, tuple[str, int, list[str]]]:
    """Give every existing key a workspace and a user; returns key id → (workspace, user id, scopes)."""
    now = datetime.now(timezone.utc)
    keys = bind.execute(sa.text("SELECT id, role, groups FROM api_keys ORDER BY id")).all()
    workspaces = {row[0] for row in bind.execute(sa.text("SELECT DISTINCT workspace FROM collections"))}
    if keys:
        workspaces.add("default")
    for slug in sorted(workspaces):
        bind.execute(sa.text("INSERT INTO workspaces (slug, display_name, policy, created_at) "
                             "VALUES (:slug, :slug, '{}', :now)"), {"slug": slug, "now": now})
    owners = {}
    for key_id, role, groups in keys:
        user_id = bind.execute(sa.text(
            "INSERT INTO users (email, display_name, failed_logins, created_at) "
            "VALUES (:email, :name, 0, :now) RETURNING id"),
            {"email": f"key-{key_id}@migrated.invalid", "name": f"holder of key {key_id}", "now": now}).scalar_one()
        bind.execute(sa.text("INSERT INTO memberships (workspace, user_id, role, created_at) "
                             "VALUES ('default', :user, :role, :now)"),
                     {"user": user_id, "role": "admin" if role == "admin" else "member", "now": now})
        for group in json.loads(groups) if isinstance(groups, str) else (groups or []):
            bind.execute(sa.text("INSERT INTO group_members (workspace, group_name, user_id) "
                                 "VALUES ('default', :group, :user)"), {"group": group, "user": user_id})
        owners[key_id] = ("default", user_id, ALL_SCOPES if role == "admin" else MEMBER_SCOPES)
    return owners


def upgrade() -> None:
    _identity_tables()
    _audit_tables()
    _data_tables()
    bind = op.get_bind()
    owners = _migrate_keys(bind)
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("workspace", sa.String(100), nullable=True))
        batch.add_column(sa.Column("user_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("scopes", sa.JSON, nullable=True))
        batch.add_column(sa.Column("expires_at", TZ, nullable=True))
        batch.add_column(sa.Column("last_used_at", TZ, nullable=True))
        batch.add_column(sa.Column("rpm", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tpd", sa.BigInteger, nullable=True))
        for column in ("minute_window", "day_tokens"):
            batch.add_column(sa.Column(column, sa.BigInteger, nullable=False, server_default="0"))
        for column in ("minute_requests", "day_window"):
            batch.add_column(sa.Column(column, sa.Integer, nullable=False, server_default="0"))
    for key_id, (workspace, user_id, scopes) in owners.items():
        bind.execute(sa.text("UPDATE api_keys SET workspace = :w, user_id = :u, scopes = :s WHERE id = :id"),
                     {"w": workspace, "u": user_id, "s": json.dumps(scopes), "id": key_id})
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("workspace", existing_type=sa.String(100), nullable=False)
        batch.alter_column("user_id", existing_type=sa.Integer, nullable=False)
        batch.alter_column("scopes", existing_type=sa.JSON, nullable=False)
        batch.create_foreign_key("fk_api_keys_workspace", "workspaces", ["workspace"], ["slug"], ondelete="CASCADE")
        batch.create_foreign_key("fk_api_keys_user", "users", ["user_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_api_keys_workspace", ["workspace"])
        batch.create_index("ix_api_keys_user_id", ["user_id"])
        batch.drop_column("role")
        batch.drop_column("groups")
    for table, column in (("collections", "created_by_user"), ("documents", "created_by_user"),
                          ("ingest_jobs", "submitted_by_user")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.Integer, nullable=True))
            batch.create_index(f"ix_{table}_{column}", [column])
        # What a key made now belongs to the key's new user, so its holder can still delete it.
        key_column = "submitted_by_key" if table == "ingest_jobs" else "created_by_key"
        for key_id, (_workspace, user_id, _scopes) in owners.items():
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :u WHERE {key_column} = :k"),
                         {"u": user_id, "k": key_id})


def downgrade() -> None:
    for table, column in (("collections", "created_by_user"), ("documents", "created_by_user"),
                          ("ingest_jobs", "submitted_by_user")):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_{column}")
            batch.drop_column(column)
    bind = op.get_bind()
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(32), nullable=False, server_default="user"))
        batch.add_column(sa.Column("groups", sa.JSON, nullable=True))
    for key_id, workspace, user_id in bind.execute(sa.text("SELECT id, workspace, user_id FROM api_keys")).all():
        role = bind.execute(sa.text("SELECT role FROM memberships WHERE workspace = :w AND user_id = :u"),
                            {"w": workspace, "u": user_id}).scalar()
        groups = [g for (g,) in bind.execute(sa.text(
            "SELECT group_name FROM group_members WHERE workspace = :w AND user_id = :u ORDER BY group_name"),
            {"w": workspace, "u": user_id})]
        bind.execute(sa.text("UPDATE api_keys SET role = :r, groups = :g WHERE id = :id"),
                     {"r": "admin" if role in ("owner", "admin") else "user", "g": json.dumps(groups), "id": key_id})
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_workspace", type_="foreignkey")
        batch.drop_constraint("fk_api_keys_user", type_="foreignkey")
        batch.drop_index("ix_api_keys_workspace")
        batch.drop_index("ix_api_keys_user_id")
        for column in ("workspace", "user_id", "scopes", "expires_at", "last_used_at", "rpm", "tpd",
                       "minute_window", "minute_requests", "day_window", "day_tokens"):
            batch.drop_column(column)
    for table in ("conversation_messages", "conversations", "training_records", "consent_events",
                  "audit_checkpoints", "audit_content", "audit_heads", "audit_events",
                  "group_members", "memberships", "users", "workspaces"):
        op.drop_table(table)
