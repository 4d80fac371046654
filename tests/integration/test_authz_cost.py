"""A permission check costs one query and a bounded amount of work whatever the number of tuples;
list visibility is part of the list's single query (no N+1). Measured at 10 and 10,000 tuples."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.integration.counting import CountingConnection

from plexsphere.db import domains as domains_db
from plexsphere.db import projects as projects_db
from plexsphere.db.pool import connect
from plexsphere.services import authz
from plexsphere.services.authz import _CHECK_SQL


async def _seed_world(conn, domain_id: uuid.UUID, project_id: uuid.UUID, admin: uuid.UUID) -> None:
    await conn.execute(
        """INSERT INTO domains (id, slug, name, mesh_cidr, created_at, updated_at)
           VALUES ($1, 'cost', 'Cost', '10.240.0.0/16', now(), now())""", domain_id)
    await conn.execute(
        """INSERT INTO projects (id, domain_id, slug, name, created_at, updated_at)
           VALUES ($1, $2, 'target', 'Target', now(), now())""", project_id, domain_id)
    await conn.execute(
        """INSERT INTO relation_tuples (id, object_type, object_id, relation, subject_type, subject_id, created_at)
           VALUES (gen_random_uuid(), 'project', $1, 'parent', 'domain', $2, now()),
                  (gen_random_uuid(), 'domain', $2, 'admin', 'user', $3, now())""",
        str(project_id), str(domain_id), str(admin))


async def _add_noise(conn, domain_id: uuid.UUID, count: int) -> None:
    """`count` more tuples: sibling Projects with their parent tuple and an admin each."""
    await conn.execute(
        """WITH p AS (
               INSERT INTO projects (id, domain_id, slug, name, created_at, updated_at)
               SELECT gen_random_uuid(), $1, 'noise-' || gen_random_uuid(), 'Noise', now(), now() FROM generate_series(1, $2) g
               RETURNING id)
           INSERT INTO relation_tuples (id, object_type, object_id, relation, subject_type, subject_id, created_at)
           SELECT gen_random_uuid(), 'project', p.id::text, r.relation, r.subject_type,
                  CASE WHEN r.relation = 'parent' THEN $1::text ELSE gen_random_uuid()::text END, now()
             FROM p CROSS JOIN (VALUES ('parent', 'domain'), ('admin', 'user')) r(relation, subject_type)""",
        domain_id, count // 2)
    await conn.execute("ANALYZE relation_tuples")


async def _measure(conn, project_id: uuid.UUID, admin: uuid.UUID) -> dict:
    counting = CountingConnection(conn)
    allowed = await authz.check(counting, f"user:{admin}", "project-admin", f"project:{project_id}")
    denied = await authz.check(counting, f"user:{uuid.uuid4()}", "project-view", f"project:{project_id}")
    check_queries = counting.statements
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {_CHECK_SQL}", "project", str(project_id),
                               "user", str(admin))
    plan = json.loads(plan) if isinstance(plan, str) else plan
    top = plan[0]["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    counting.statements = 0
    domains, _ = await domains_db.list_visible(counting, ("user", str(admin)), None, 50)
    projects, _ = await projects_db.list_visible(counting, ("user", str(admin)), None, None, 50)
    return {"allowed": allowed.allowed, "denied": not denied.allowed, "check_queries": check_queries,
            "buffers": buffers, "list_queries": counting.statements, "listed": len(domains) + len(projects)}


def test_check_cost_is_bounded_regardless_of_tuple_count(fresh_database):
    async def run():
        conn = await connect(fresh_database)
        try:
            domain_id, project_id, admin = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            await _seed_world(conn, domain_id, project_id, admin)
            await _add_noise(conn, domain_id, 8)
            small = await _measure(conn, project_id, admin)
            small_tuples = await conn.fetchval("SELECT count(*) FROM relation_tuples")
            await _add_noise(conn, domain_id, 10_000)
            large = await _measure(conn, project_id, admin)
            large_tuples = await conn.fetchval("SELECT count(*) FROM relation_tuples")
            return small, small_tuples, large, large_tuples
        finally:
            await conn.close()

    small, small_tuples, large, large_tuples = asyncio.run(run())
    print(f"\ntuples={small_tuples}: {small}\ntuples={large_tuples}: {large}")
    assert small_tuples <= 10 and large_tuples >= 10_000
    for m in (small, large):
        assert m["allowed"] and m["denied"]
        assert m["check_queries"] == 2  # one per check
        assert m["list_queries"] == 2  # one per list, visibility included
    # Index probes only: the pages touched do not grow with the table (a scan of 10,000 tuples
    # would touch well over a hundred pages).
    assert large["buffers"] <= small["buffers"] + 10, (small, large)
    assert large["buffers"] < 60
