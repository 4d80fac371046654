"""Initial schema: every table, from the per-area files in db/schema/ (applied in name order).

Revision ID: 0001
Revises:
Until the first release this revision is edited in place; after it, every change is a new revision.
"""

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"


def upgrade() -> None:
    for path in sorted(SCHEMA_DIR.glob("*.sql")):
        op.execute(path.read_text())


def downgrade() -> None:
    op.execute("DROP SCHEMA plexsphere CASCADE")
