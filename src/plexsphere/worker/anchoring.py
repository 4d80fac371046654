"""Anchoring: the outbox handler that turns registered Nodes into Peers of their Domain's mesh.

Runs in the worker's transaction for the outbox rows (idempotent: a re-run finds the Peer and does
nothing). A join writes O(1) rows whatever the Domain's size: the Peer, one per-node PSK, three
mirrored tuples and ONE `peer_added` event that every other Node's stream filters in on delivery.
The new Node itself learns its peers from the register response or `GET /v1/nodes/{id}/state`.

The worker hands over every claimed `node.registered` row at once, and a batch of N Nodes costs a
constant number of statements (arrays in, unnest in SQL): under churn the cost per join is a few
rows, not a dozen round trips.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere import crypto
from plexsphere.ids import uuid7
from plexsphere.server.runtime import Runtime
from plexsphere.services import events, psk
from plexsphere.timeutil import utcnow
from plexsphere.worker.outbox import batch_handler

# Locks the Nodes (in id order, as issue_node_psk does for one) so a concurrent PSK issuer waits,
# skips Nodes deleted meanwhile and those already anchored, and returns what the next statements
# need. The CTE's insert is invisible to the final SELECT, which therefore reads the Nodes' own rows.
_ANCHOR_SQL = """
WITH wanted AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS w(node_id, peer_id)
)
, locked AS (
    SELECT n.id, n.domain_id, n.project_id, n.resource_id, n.mesh_ip, n.public_key, n.kind
      FROM nodes n WHERE n.id = ANY($1::uuid[]) ORDER BY n.id FOR NO KEY UPDATE
)
, anchored AS (
    INSERT INTO peers (id, node_id, domain_id, anchored_at, reachability, reachability_changed_at)
    SELECT w.peer_id, l.id, l.domain_id, $3, 'healthy', $3 FROM locked l JOIN wanted w ON w.node_id = l.id
    ORDER BY l.id
    ON CONFLICT (node_id) DO NOTHING
    RETURNING node_id
)
SELECT l.id AS node_id, l.domain_id, l.project_id, l.resource_id, l.mesh_ip, l.public_key, l.kind,
       coalesce(k.max_epoch, 0) + 1 AS epoch, coalesce(k.has_live, false) AS has_live_psk
  FROM anchored a JOIN locked l ON l.id = a.node_id
  LEFT JOIN LATERAL (
      SELECT max(epoch) AS max_epoch, bool_or(retired_at IS NULL) AS has_live FROM node_psks WHERE node_id = l.id
  ) k ON true
 ORDER BY l.id
"""

_RETIRE_SQL = "UPDATE node_psks SET retired_at = now() WHERE node_id = ANY($1::uuid[]) AND retired_at IS NULL"

_PSKS_SQL = """
INSERT INTO node_psks (id, node_id, kid, wrap_key_version, epoch, psk_wrapped, created_at)
SELECT id, node_id, $3, $4, epoch, psk_wrapped, $7
  FROM unnest($1::uuid[], $2::uuid[], $5::int[], $6::bytea[]) AS p(id, node_id, epoch, psk_wrapped)
"""

_TUPLES_SQL = """
INSERT INTO relation_tuples (id, object_type, object_id, relation, subject_type, subject_id, project_id, source,
                             created_at)
SELECT id, object_type, object_id, relation, subject_type, subject_id, project_id, 'mirror', now()
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[])
       AS t(id, object_type, object_id, relation, subject_type, subject_id, project_id)
ON CONFLICT (object_type, object_id, relation, subject_type, subject_id, subject_relation) DO NOTHING
"""


async def anchor_many(conn: asyncpg.Connection, runtime: Runtime, node_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Anchors the Nodes; returns those anchored now (not those already anchored or deleted).
    At most five statements whatever len(node_ids)."""
    node_ids = sorted(set(node_ids))
    if not node_ids:
        return []
    rows = await conn.fetch(_ANCHOR_SQL, node_ids, [uuid7() for _ in node_ids], utcnow())
    if not rows:
        return []
    anchored = [r["node_id"] for r in rows]
    relisted = [r["node_id"] for r in rows if r["has_live_psk"]]
    if relisted:  # only a Node anchored before (and since unanchored) can still hold a live PSK
        await conn.execute(_RETIRE_SQL, relisted)
    keyring = runtime.keyring
    await conn.execute(
        _PSKS_SQL, [uuid7() for _ in rows], anchored, psk.PSK_KID, keyring.active_version,
        [r["epoch"] for r in rows],
        [keyring.wrap(crypto.random_bytes(32), psk.node_psk_aad(r["node_id"], r["epoch"])) for r in rows],
        utcnow(),
    )
    tuples: list[tuple[str, str, str, str, str, uuid.UUID]] = []
    for r in rows:
        node, project = str(r["node_id"]), str(r["project_id"])
        tuples += [
            ("node", node, "parent", "project", project, r["project_id"]),
            ("resource", str(r["resource_id"]), "parent", "project", project, r["project_id"]),
            # The Node is the agent of itself: `node-agent` routes then authorise its own NSK by the schema.
            ("node", node, "agent", "node", node, r["project_id"]),
        ]
    await conn.execute(_TUPLES_SQL, [uuid7() for _ in tuples], *map(list, zip(*tuples, strict=True)))
    # Last, just before the worker commits: this statement takes the Domains' event-log locks.
    await events.append_many(conn, runtime.signing, [
        events.PendingEvent(r["domain_id"], "peer_added", psk.peer_object(r), exclude_node_id=r["node_id"])
        for r in rows
    ])
    return anchored


async def anchor(conn: asyncpg.Connection, runtime: Runtime, node_id: uuid.UUID) -> bool:
    """Anchors one Node; False when it is already anchored or no longer exists."""
    return bool(await anchor_many(conn, runtime, [node_id]))


@batch_handler("node.registered")
async def on_nodes_registered(conn: asyncpg.Connection, runtime: Runtime, payloads: list[dict[str, Any]]) -> None:
    await anchor_many(conn, runtime, [uuid.UUID(p["node_id"]) for p in payloads])
