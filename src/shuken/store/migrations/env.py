"""Alembic environment: runs migrations on the engine the Database object hands over."""

from alembic import context

from shuken.store.tables import Base

config = context.config
connectable = config.attributes.get("engine")

with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite ALTERs need batch mode; harmless on PostgreSQL.
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
