"""Initial schema, as released in 0.1.0: the per-area files in db/migrations/sql/0001_initial/.

Revision ID: 0001
Revises:
Released: never edit this revision or its SQL files; every schema change is a new revision.
"""

from alembic import op

from plexsphere.db.migrations.sqlfiles import sql_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for text in sql_files("0001_initial"):
        op.execute(text)


def downgrade() -> None:
    op.execute("DROP SCHEMA plexsphere CASCADE")
