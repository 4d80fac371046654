"""The migration history is linear and released revisions never change (an upgraded database and a
fresh one must end with the same schema)."""

from __future__ import annotations

import hashlib

from alembic.script import ScriptDirectory

from plexsphere.db.migrate import alembic_config
from plexsphere.db.migrations.sqlfiles import SQL_DIR

# 0.1.0's schema, byte for byte. A change here means a released revision was edited: add a new
# revision instead (docs/architecture.md, "Migrations").
RELEASED_0001 = {
    "00_core.sql": "bdb7808fd7893805627687264321987b62ff3d1b2bb77bb603ad4c39ef11d956",
    "10_tenancy.sql": "6d4cefe5be06514c0e5dd22dac20232f62848acaa1089bd03964445a20685c35",
    "20_auth.sql": "25d71706e3c535627a34c7545030f8fc1362494977d98fc6bf78a8c20a4f0c9b",
    "30_enrolment.sql": "189cf49e7191932b64d91514ded98440316996a4c08c8f3e40448d70a23526c4",
    "40_mesh.sql": "c1b9632e93b1227e561f88736bf5fd7c458dbb50a8b3d87f7273a1456ed6f3d4",
    "50_rotation.sql": "bd4cc26d1412b06d8264010cf40236486b9629e077ef9464dfc54f325d3e4bdc",
}


def test_one_head_and_a_linear_history():
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/none"))
    heads = script.get_heads()
    assert len(heads) == 1, f"several heads {heads}: chain the newest revision after the current head"
    seen = [rev.revision for rev in script.walk_revisions()]
    assert seen[-1] == "0001"
    assert all(not rev.is_merge_point for rev in script.walk_revisions())


def test_released_revision_0001_is_unchanged():
    folder = SQL_DIR / "0001_initial"
    found = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.sql"))}
    assert found == RELEASED_0001
