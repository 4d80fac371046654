"""A join into a Domain of N Nodes costs O(1) writes and queries for the join itself (so O(N) for
the Domain's N joins, never O(N²)): measured at N=50 and N=100."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from tests.integration.counting import CountingConnection
from tests.integration.enrolment_helpers import insert_nodes_sql, keyring
from tests.integration.mesh_helpers import enrol, make_domain, make_project

from plexsphere.db.pool import connect
from plexsphere.services.signing import SigningKeys
from plexsphere.worker.anchoring import anchor

WRITTEN = {
    "events": "SELECT count(*) FROM plexsphere.events WHERE domain_id = %s",
    "peers": "SELECT count(*) FROM plexsphere.peers WHERE domain_id = %s",
    "node_psks": "SELECT count(*) FROM plexsphere.node_psks k JOIN plexsphere.nodes n ON n.id = k.node_id "
                 "WHERE n.domain_id = %s",
    "relation_tuples": "SELECT count(*) FROM plexsphere.relation_tuples t JOIN plexsphere.nodes n "
                       "ON t.object_id = n.id::text OR t.object_id = n.resource_id::text WHERE n.domain_id = %s",
}


def _counts(stack, domain_id) -> dict[str, int]:
    return {name: stack.sql_value(query, domain_id) for name, query in WRITTEN.items()}


def _join_cost(stack, size: int) -> tuple[dict[str, int], int, int]:
    """(rows written by one anchoring, statements it issued, event rows of one real registration)
    in a Domain that already holds `size` anchored Nodes."""
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    insert_nodes_sql(stack.database_url, domain_id, project_id, range(1, size + 1), anchored=True)
    (joining,) = insert_nodes_sql(stack.database_url, domain_id, project_id, [size + 1])
    ring = keyring(stack)

    async def run() -> int:
        conn = await connect(stack.database_url)
        try:
            counting = CountingConnection(conn)
            async with conn.transaction():
                assert await anchor(counting, SimpleNamespace(keyring=ring, signing=SigningKeys(ring)),
                                    uuid.UUID(str(joining)))
            return counting.statements
        finally:
            await conn.close()

    before = _counts(stack, domain_id)
    statements = asyncio.run(run())
    after = _counts(stack, domain_id)
    written = {name: after[name] - before[name] for name in WRITTEN}
    # And through the real server: one registration (register + worker anchoring) adds one event row.
    events_before = stack.sql_value(WRITTEN["events"], domain_id)
    enrol(stack, project_id)
    return written, statements, stack.sql_value(WRITTEN["events"], domain_id) - events_before


@pytest.mark.slow
def test_a_join_costs_the_same_at_n_50_and_n_100(stack):
    written_50, statements_50, events_50 = _join_cost(stack, 50)
    written_100, statements_100, events_100 = _join_cost(stack, 100)
    print(f"\njoin cost  N=50: rows {written_50}, statements {statements_50}, events via register {events_50}"
          f"\n          N=100: rows {written_100}, statements {statements_100}, events via register {events_100}")
    assert written_50 == written_100 == {"events": 1, "peers": 1, "node_psks": 1, "relation_tuples": 3}
    assert statements_50 == statements_100
    assert statements_50 <= 12
    assert events_50 == events_100 == 1
