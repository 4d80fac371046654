"""Alembic environment: runs with psycopg (sync) so schema files may hold several statements."""

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations_online() -> None:
    engine = create_engine(url, future=True)
    with engine.connect() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS plexsphere"))
        # Migrations of concurrent `serve` processes queue behind one advisory lock.
        connection.execute(text("SELECT pg_advisory_lock(4242424242)"))
        connection.commit()
        try:
            context.configure(
                connection=connection,
                version_table_schema="plexsphere",
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(4242424242)"))
            connection.commit()
    engine.dispose()


run_migrations_online()
