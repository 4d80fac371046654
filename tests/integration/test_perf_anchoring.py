"""Anchoring as a batch: many registered Nodes claimed at once are all anchored (one PSK, three
tuples, one `peer_added` each), a bad row or a deleted Node does not hold the batch back, two
worker processes never anchor a Node twice, and at low load a join reaches other Nodes' streams
within a fraction of a second; a batch costs the same statements for 5 or 250 Nodes."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
import uuid

import orjson
import psycopg
from tests.conftest import wait_until
from tests.integration.counting import CountingConnection
from tests.integration.enrolment_helpers import insert_nodes_sql, keyring
from tests.integration.mesh_helpers import SseReader, enrol, make_domain, make_project

from plexsphere.config import Settings
from plexsphere.db.pool import connect
from plexsphere.server.runtime import Runtime
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import utcnow
from plexsphere.worker.anchoring import anchor_many

BATCH_NODES = 300


def _large_cidr() -> str:
    """A /22 (1,022 hosts) outside the range unique_cidr() hands out (10.128.0.0/9)."""
    n = secrets.randbelow(16 * 64)
    return f"172.{16 + n // 64}.{(n % 64) * 4}.0/22"


def _enqueue_in_one_transaction(stack, payloads: list[dict]) -> None:
    """All rows become visible (and NOTIFY the worker) at one commit, so the worker claims them together."""
    with psycopg.connect(stack.database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO plexsphere.outbox (topic, payload) VALUES ('node.registered', %s::jsonb)",
            [(orjson.dumps(p).decode(),) for p in payloads],
        )


def _stream(stack, node) -> SseReader:
    reader = SseReader(f"{stack.url}/v1/nodes/{node.node_id}/events", {"Authorization": f"Bearer {node.bearer}"})
    assert reader.status == 200, reader.error
    return reader


def test_a_batch_of_registrations_is_anchored_whole_despite_a_bad_row_and_a_deleted_node(stack):
    domain_id = make_domain(stack, _large_cidr())
    project_id = make_project(stack, domain_id)
    watcher = enrol(stack, project_id)
    stream = _stream(stack, watcher)
    try:
        node_ids = insert_nodes_sql(stack.database_url, domain_id, project_id, range(10, 10 + BATCH_NODES + 1))
        deleted = node_ids.pop()
        stack.sql("DELETE FROM plexsphere.nodes WHERE id = %s", deleted)
        payloads = [{"node_id": str(n), "domain_id": str(domain_id), "project_id": str(project_id)} for n in node_ids]
        payloads.insert(BATCH_NODES // 2, {"node_id": "not-a-uuid"})  # fails the batch → row by row
        payloads.insert(7, {"node_id": str(deleted)})
        _enqueue_in_one_transaction(stack, payloads)

        wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.peers WHERE domain_id = %s", domain_id)
                   == BATCH_NODES + 1, timeout=30, message="the batch anchored")
        # Every anchored Node: exactly one live PSK of epoch 1 and its three mirrored tuples.
        assert stack.sql("""SELECT count(DISTINCT node_id), min(epoch), max(epoch), count(*) FILTER (WHERE retired_at IS NULL)
                              FROM plexsphere.node_psks WHERE node_id = ANY(%s::uuid[])""", node_ids) == [
            (BATCH_NODES, 1, 1, BATCH_NODES)]
        texts = [str(n) for n in node_ids]
        assert stack.sql_value("""SELECT count(*) FROM plexsphere.relation_tuples
                                   WHERE object_type = 'node' AND object_id = ANY(%s)
                                     AND ((relation = 'parent' AND subject_id = %s) OR
                                          (relation = 'agent' AND subject_id = object_id))""",
                               texts, str(project_id)) == 2 * BATCH_NODES
        assert stack.sql_value("""SELECT count(*) FROM plexsphere.relation_tuples t JOIN plexsphere.nodes n
                                      ON t.object_type = 'resource' AND t.object_id = n.resource_id::text
                                   WHERE n.id = ANY(%s::uuid[]) AND t.subject_id = %s""",
                               node_ids, str(project_id)) == BATCH_NODES
        # One peer_added per Node, none for the deleted one, each excluding its own Node.
        excluded = stack.sql("SELECT exclude_node_id FROM plexsphere.events WHERE domain_id = %s AND type = 'peer_added'"
                             " AND exclude_node_id <> %s", domain_id, watcher.node_id)
        assert sorted(r[0] for r in excluded) == sorted(node_ids)
        # The bad row backs off alone; the deleted Node's row is done (nothing to anchor).
        assert stack.sql("SELECT payload->>'node_id', attempts FROM plexsphere.outbox WHERE topic = 'node.registered'"
                         " AND payload->>'node_id' IN ('not-a-uuid', %s)", str(deleted)) == [("not-a-uuid", 1)]
        stack.sql("DELETE FROM plexsphere.outbox WHERE payload->>'node_id' = 'not-a-uuid'")

        # The watcher's stream got every join once, in seq order, each a verifiable peer object.
        wait_until(lambda: len(stream.of_type("peer_added")) >= BATCH_NODES, timeout=20, message="frames delivered")
        frames = stream.of_type("peer_added")
        assert len(frames) == BATCH_NODES
        seqs = [int(f.id) for f in frames]
        assert seqs == sorted(seqs) and len(set(seqs)) == BATCH_NODES
        peers = [orjson.loads(f.data)["payload"] for f in frames]
        assert sorted(uuid.UUID(p["node_id"]) for p in peers) == sorted(node_ids)
        assert all(set(p) == {"node_id", "mesh_ip", "public_key"} for p in peers)
    finally:
        stream.close()


def test_two_worker_processes_anchor_each_node_exactly_once(stack):
    stack.start_extra_server(role="worker")
    domain_id = make_domain(stack, _large_cidr())
    project_id = make_project(stack, domain_id)
    node_ids = insert_nodes_sql(stack.database_url, domain_id, project_id, range(10, 410))
    payloads = [{"node_id": str(n), "domain_id": str(domain_id), "project_id": str(project_id)} for n in node_ids]
    # Duplicates (at-least-once delivery) interleaved, in small commits, so both workers take part.
    for i in range(0, len(payloads), 40):
        _enqueue_in_one_transaction(stack, payloads[i:i + 40] + payloads[max(0, i - 20):i])
    wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.outbox WHERE topic = 'node.registered'"
                                       " AND payload->>'domain_id' = %s", str(domain_id)) == 0,
               timeout=30, message="outbox drained")
    assert stack.sql_value("SELECT count(*) FROM plexsphere.peers WHERE domain_id = %s", domain_id) == len(node_ids)
    assert stack.sql_value("SELECT count(*) FROM plexsphere.node_psks WHERE node_id = ANY(%s::uuid[])",
                           node_ids) == len(node_ids)
    assert stack.sql_value("SELECT count(*) FROM plexsphere.events WHERE domain_id = %s", domain_id) == len(node_ids)


def test_at_low_load_a_join_reaches_another_nodes_stream_within_a_fraction_of_a_second(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    watcher = enrol(stack, project_id)
    stream = _stream(stack, watcher)
    latencies = []
    try:
        for _ in range(7):
            seen = len(stream.of_type("peer_added"))
            node = enrol(stack, project_id, wait=False)  # timed from the register response (its commit)
            answered = time.monotonic()
            wait_until(lambda seen=seen: len(stream.of_type("peer_added")) > seen, timeout=5, interval=0.001,
                       message="peer_added on the watcher's stream")
            latencies.append(time.monotonic() - answered)
            assert orjson.loads(stream.of_type("peer_added")[-1].data)["payload"]["node_id"] == node.node_id
    finally:
        stream.close()
    median_ms = statistics.median(latencies) * 1000
    print(f"register answered → peer_added on another stream: median {median_ms:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    # The goal is ≤ 100 ms on an idle machine; the bound leaves room for a shared, busy one.
    assert median_ms < 250, latencies


def test_anchoring_a_batch_costs_the_same_statements_for_5_or_250_nodes(stack):

    domain_id = make_domain(stack, _large_cidr())
    project_id = make_project(stack, domain_id)
    # Written straight into the tables with no outbox rows: the running worker leaves them alone.
    small = insert_nodes_sql(stack.database_url, domain_id, project_id, range(10, 15))
    large = insert_nodes_sql(stack.database_url, domain_id, project_id, range(20, 270))

    async def anchor(node_ids):
        ring = keyring(stack)
        conn = await connect(stack.database_url)
        try:
            runtime = Runtime(Settings(database_url=stack.database_url), None, ring, None, SigningKeys(ring),
                              utcnow())
            counting = CountingConnection(conn)
            async with conn.transaction():
                anchored = await anchor_many(counting, runtime, node_ids)
            again = CountingConnection(conn)
            async with conn.transaction():
                assert await anchor_many(again, runtime, node_ids) == []  # idempotent
            return anchored, counting.statements
        finally:
            await conn.close()

    small_anchored, small_statements = asyncio.run(anchor(small))
    large_anchored, large_statements = asyncio.run(anchor(large))
    assert sorted(small_anchored) == sorted(small) and sorted(large_anchored) == sorted(large)
    # Peers, PSKs, tuples, events (+ the Domain's signing key, read once): no per-Node statement.
    assert small_statements == large_statements <= 5, (small_statements, large_statements)
    assert stack.sql_value("SELECT count(*) FROM plexsphere.events WHERE domain_id = %s", domain_id) == 255
