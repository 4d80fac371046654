"""Bridge relays (issue 12): the per-Resource relay configuration, each Node's reported relayed
edges, and registration through the bridge seam.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from plexsphere.db.migrations.sqlfiles import sql_files

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for text in sql_files("0002_bridge_relays"):
        op.execute(text)


def downgrade() -> None:
    raise NotImplementedError("0.1.x migrations are forward-only")
