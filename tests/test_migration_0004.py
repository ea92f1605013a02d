"""Revision 0004 (governance) on a database that has keys and collections from before it: keys keep
authenticating as the right people, downgrade gives the old columns back, and upgrading again works."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, text

from shuken.config import Settings
from shuken.errors import Unauthorized
from shuken.governance.identity import SCOPES, Subject
from shuken.services import Services
from shuken.store import Database

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


def old_key(connection, name: str, role: str, groups: list[str], revoked: bool = False) -> tuple[int, str]:
    """A key as revision 0003 stored it: a role ('admin' or 'user') and the groups on the key itself."""
    secret = "sk-shuken-" + secrets.token_urlsafe(32)
    key_id = connection.execute(text(
        "INSERT INTO api_keys (name, prefix, secret_hash, role, groups, created_at, revoked_at) "
        "VALUES (:name, :prefix, :hash, :role, :groups, :now, :revoked) RETURNING id"),
        {"name": name, "prefix": secret[:16], "hash": hashlib.sha256(secret.encode()).hexdigest(), "role": role,
         "groups": json.dumps(groups), "now": NOW, "revoked": NOW if revoked else None}).scalar_one()
    return key_id, secret


@pytest.fixture
def old_database(isolated_home):
    isolated_home.mkdir(parents=True)
    db = Database(Settings(home=isolated_home).database_url)
    command.upgrade(db.alembic_config(), "0003")
    with db.engine.begin() as connection:
        admin_id, admin = old_key(connection, "ops", "admin", [])
        user_id, user = old_key(connection, "analyst", "user", ["legal", "finance"])
        _, revoked = old_key(connection, "gone", "user", [], revoked=True)
        connection.execute(text(
            "INSERT INTO collections (workspace, name, description, restricted, generation, created_by_key, "
            "created_at) VALUES ('default', 'contracts', '', 1, 0, :key, :now)"), {"key": user_id, "now": NOW})
        connection.execute(text("INSERT INTO collection_grants (collection_id, group_name) "
                                "SELECT id, 'legal' FROM collections WHERE name = 'contracts'"))
    yield db, {"admin": admin, "user": user, "revoked": revoked}, {"admin": admin_id, "user": user_id}
    db.dispose()


def old_columns(db: Database) -> dict[int, tuple[str, list[str]]]:
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, role, groups FROM api_keys ORDER BY id")).all()
    return {key_id: (role, json.loads(groups)) for key_id, role, groups in rows}


def test_upgrade_downgrade_upgrade_keeps_every_key_working(old_database, isolated_home):
    db, secrets_, ids = old_database
    before = old_columns(db)
    db.upgrade()
    assert db.current_revision() == db.head_revision()

    svc = Services.open(Settings(home=isolated_home))
    try:
        admin = svc.keys.authenticate(secrets_["admin"])
        assert (admin.workspace, admin.role, admin.groups, admin.scopes) == ("default", "admin", frozenset(),
                                                                             frozenset(SCOPES))
        user = svc.keys.authenticate(secrets_["user"])
        assert (user.workspace, user.role, user.groups) == ("default", "member", frozenset({"legal", "finance"}))
        assert user.scopes == frozenset({"chat", "knowledge:read", "knowledge:write"})
        assert user.key_id == ids["user"] and admin.key_id == ids["admin"] and user.user_id != admin.user_id
        with pytest.raises(Unauthorized):
            svc.keys.authenticate(secrets_["revoked"])
        # Their groups still open the restricted collection, and the key's holder still owns what it made.
        assert [c["name"] for c in svc.knowledge.list_collections(user)] == ["contracts"]
        outsider = Subject(role="member", user_id=999, key_id=999, groups=frozenset({"finance"}))
        assert svc.knowledge.list_collections(outsider) == []
        with db.engine.connect() as connection:
            owner = connection.execute(text("SELECT created_by_user FROM collections")).scalar_one()
        assert owner == user.user_id
        # The migrated holder is a user like any other: their groups can change.
        svc.directory.set_groups(Subject.operator(), f"key-{ids['user']}@migrated.invalid", ["legal", "ops"])
        # A collection made with the key before the upgrade may still be deleted by its holder (a member).
        assert svc.knowledge.delete_collection(user, "contracts")["deleted"]
        assert svc.audit.verify("default").ok
    finally:
        svc.close()

    command.downgrade(db.alembic_config(), "0003")
    assert db.current_revision() == "0003"
    restored = old_columns(db)
    assert restored[ids["admin"]] == before[ids["admin"]] == ("admin", [])
    assert restored[ids["user"]] == ("user", ["legal", "ops"])  # the groups as they were at the downgrade
    tables = set(inspect(db.engine).get_table_names())
    assert not {"workspaces", "users", "memberships", "audit_events", "consent_events"} & tables
    assert {"api_keys", "collections", "collection_grants"} <= tables

    db.upgrade()
    svc = Services.open(Settings(home=isolated_home))
    try:
        again = svc.keys.authenticate(secrets_["user"])
        assert (again.role, again.groups) == ("member", frozenset({"legal", "ops"}))
        assert svc.keys.authenticate(secrets_["admin"]).is_admin
    finally:
        svc.close()
