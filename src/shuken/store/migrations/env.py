"""Alembic environment: runs migrations on the engine the Database object hands over."""

from alembic import context

from shuken.store.tables import Base

config = context.config
connectable = config.attributes.get("engine")
if connectable is None:  # the alembic command line has no engine: migrations run only through Database
    raise RuntimeError("Alembic was started without the engine that shuken's Database hands over")

with connectable.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the DROP would cascade
        # and delete every child row (a collection's documents and chunks). SQLite ignores this pragma inside
        # a transaction, so it is set before the migration's transaction begins.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite ALTERs need batch mode; harmless on PostgreSQL.
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
    connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
