"""API keys (hash-only storage, revoke) and the database (WAL, migrations, old-schema refusal)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from shuken.errors import InvalidRequest, NotFound, Unauthorized
from shuken.governance.identity import Subject
from shuken.store import Database, SchemaOutOfDate
from shuken.store.tables import WebSessionRow


OPERATOR = Subject.operator()


@pytest.fixture
def member(services):
    return services.directory.create_user(OPERATOR, "ci@example.org", "member")


def test_key_lifecycle_stores_only_a_hash(services, member):
    key, secret = services.keys.create(OPERATOR, member.email, "ci-bot")
    assert secret.startswith("sk-shuken-") and len(secret) > 40
    subject = services.keys.authenticate(secret)
    assert (subject.key_id, subject.user_id, subject.workspace, subject.role) == (key.id, member.user_id, "default",
                                                                                    "member")
    with services.db.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).fetchall()
    assert rows and all(secret not in str(value) for row in rows for value in row)
    services.keys.revoke(OPERATOR, str(key.id))
    with pytest.raises(Unauthorized, match="revoked"):
        services.keys.authenticate(secret)
    assert services.keys.count_active() == 0


def test_key_errors(services, member):
    with pytest.raises(Unauthorized, match="Missing API key"):
        services.keys.authenticate(None)
    with pytest.raises(InvalidRequest):
        services.keys.create(OPERATOR, member.email, "  ")
    with pytest.raises(InvalidRequest, match="Unknown scope"):
        services.keys.create(OPERATOR, member.email, "x", scopes=["root"])
    with pytest.raises(NotFound):
        services.keys.create(OPERATOR, "stranger@example.org", "x")
    with pytest.raises(NotFound):
        services.keys.revoke(OPERATOR, "nobody")
    services.keys.create(OPERATOR, member.email, "twin")
    services.keys.create(OPERATOR, member.email, "twin")
    with pytest.raises(InvalidRequest, match="several keys"):
        services.keys.revoke(OPERATOR, "twin")


def test_database_is_wal_and_at_head(services):
    with services.db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert services.db.current_revision() == services.db.head_revision()


def test_old_schema_refuses_to_start_until_upgraded(services, isolated_home):
    url = services.db.url
    with services.db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    services.db.dispose()
    db = Database(url)
    with pytest.raises(SchemaOutOfDate, match="shuken db upgrade"):
        db.prepare()
    db.dispose()


def test_migrations_build_exactly_the_orm_schema(services):
    """Alembic revisions and the ORM tables must agree (FTS5's own shadow tables are not ORM tables)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shuken.store.tables import Base

    with services.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": lambda obj, name, kind, reflected, compare_to:
                not (kind == "table" and name.startswith("chunk_terms"))})
        assert compare_metadata(context, Base.metadata) == []


def test_first_start_bootstraps_once_never_after_keys_are_revoked(services):
    from shuken.governance.bootstrap import bootstrap

    first = bootstrap(services.directory, services.keys, "root@example.org")
    subject = services.keys.authenticate(first.api_key)
    assert (subject.role, subject.workspace) == ("owner", "default")
    # The same owner signs in to the web UI with the printed password.
    assert services.directory.check_password("default", "root@example.org", first.password).user_id == subject.user_id
    assert len(first.password) >= 16
    services.keys.revoke(OPERATOR, str(subject.key_id))
    # An incident response that revokes every key must not be undone by the next restart.
    assert bootstrap(services.directory, services.keys, "root@example.org") is None
    assert services.keys.count_active() == 0


def test_password_sign_in_is_audited_and_locks_after_repeated_failures(services):
    from shuken.governance.directory import MAX_FAILED_LOGINS

    password = "correct horse battery staple"
    services.directory.create_user(OPERATOR, "signer@example.org", "viewer", password=password)
    with pytest.raises(InvalidRequest, match="12 characters"):
        services.directory.set_password("signer@example.org", "short")
    subject = services.directory.check_password("default", "Signer@Example.org ", password)
    assert (subject.role, subject.key_id, subject.scopes) == ("viewer", None, None)
    with services.db.engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users WHERE email = 'signer@example.org'")).scalar()
    assert stored.startswith("$argon2id$") and password not in stored
    services.directory.create_workspace("other")
    with pytest.raises(Unauthorized, match="not a member"):  # right password, wrong workspace
        services.directory.check_password("other", "signer@example.org", password)
    for _ in range(MAX_FAILED_LOGINS - 1):  # one failure already counted above
        with pytest.raises(Unauthorized, match="wrong password"):
            services.directory.check_password("default", "signer@example.org", "wrong guess 123")
    with pytest.raises(Unauthorized, match="locked"):  # even the right password, while locked
        services.directory.check_password("default", "signer@example.org", password)
    outcomes = [(r["action"], r["outcome"], r["details"].get("reason")) for r in services.audit.rows("default")
                if r["action"] == "login"]
    assert outcomes == [("login", "success", None)] + [("login", "failure", "unknown user or wrong password")] * (
        MAX_FAILED_LOGINS - 1) + [("login", "failure", "account locked after repeated failures")]
    assert [r["details"]["reason"] for r in services.audit.rows("other") if r["action"] == "login"] == [
        "not a member of this workspace"]
    assert services.audit.verify("default").ok


def test_web_sessions_end_on_sign_out_new_password_and_removal(services):
    password = "correct horse battery staple"
    services.directory.create_user(OPERATOR, "browser@example.org", "member", password=password)
    token = services.sessions.sign_in("default", "browser@example.org", password)
    viewer = services.sessions.resolve(token)
    assert (viewer.subject.role, viewer.email) == ("member", "browser@example.org") and len(viewer.csrf_token) > 30
    # Only the token's hash is stored.
    assert token not in {row[0] for row in services.db.engine.connect().exec_driver_sql(
        "SELECT token_hash FROM web_sessions")}
    services.directory.set_role(OPERATOR, "browser@example.org", "viewer")
    assert services.sessions.resolve(token).subject.role == "viewer"  # the role is read on every request

    services.directory.set_password("browser@example.org", "another long password")
    with pytest.raises(Unauthorized):
        services.sessions.resolve(token)
    token = services.sessions.sign_in("default", "browser@example.org", "another long password")
    services.directory.remove_member(OPERATOR, "browser@example.org")
    services.directory.create_user(OPERATOR, "browser@example.org", "member")  # re-added: the old session stays dead
    with pytest.raises(Unauthorized):
        services.sessions.resolve(token)
    with pytest.raises(Unauthorized):
        services.sessions.resolve("not-a-token")

    token = services.sessions.sign_in("default", "browser@example.org", "another long password")
    services.sessions.sign_out(token)
    with pytest.raises(Unauthorized):
        services.sessions.resolve(token)
    assert services.db.engine.connect().exec_driver_sql("SELECT count(*) FROM web_sessions").scalar() == 0


@pytest.mark.parametrize("idle, absolute", [(timedelta(minutes=5), timedelta(hours=1)),
                                            (timedelta(hours=1), timedelta(minutes=5))])
def test_web_sessions_expire_when_idle_and_absolutely(services, idle, absolute):
    from shuken.governance.sessions import SessionService

    sessions = SessionService(services.db, services.directory, services.bus, idle=idle, absolute=absolute)
    services.directory.create_user(OPERATOR, "idle@example.org", "member", password="correct horse battery")
    token = sessions.sign_in("default", "idle@example.org", "correct horse battery")
    assert sessions.resolve(token).email == "idle@example.org"
    # Waiting is not an option: move the session's times into the past, as ten minutes would. Only one of
    # the two limits (the 5-minute one) is passed; the other has 50 minutes left.
    with services.db.session() as session:
        for row in session.scalars(select(WebSessionRow)):
            row.created_at -= timedelta(minutes=10)
            row.last_seen_at -= timedelta(minutes=10)
            row.expires_at -= timedelta(minutes=10)
    with pytest.raises(Unauthorized):
        sessions.resolve(token)
    # The ended session's row is gone, not just refused.
    assert services.db.engine.connect().exec_driver_sql("SELECT count(*) FROM web_sessions").scalar() == 0
