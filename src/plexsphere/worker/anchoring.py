"""Anchoring: the outbox handler that turns a registered Node into a Peer of its Domain's mesh.

Runs in the worker's transaction for the outbox row (idempotent: a re-run finds the Peer and does
nothing). One join writes O(1) rows whatever the Domain's size: the Peer, one per-node PSK, three
mirrored tuples and ONE `peer_added` event that every other Node's stream filters in on delivery.
The new Node itself learns its peers from the register response or `GET /v1/nodes/{id}/state`.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.db import peers as peers_db
from plexsphere.ids import uuid7
from plexsphere.server.runtime import Runtime
from plexsphere.services import events, psk
from plexsphere.services.bootstrap import grant
from plexsphere.timeutil import utcnow
from plexsphere.worker.outbox import handler

_ANCHOR_SQL = """
INSERT INTO peers (id, node_id, domain_id, anchored_at, reachability, reachability_changed_at)
SELECT $1, n.id, n.domain_id, $2, 'healthy', $2 FROM nodes n WHERE n.id = $3
ON CONFLICT (node_id) DO NOTHING
RETURNING domain_id
"""


async def anchor(conn: asyncpg.Connection, runtime: Runtime, node_id: uuid.UUID) -> bool:
    """Anchors the Node; False when it is already anchored or no longer exists."""
    node = await conn.fetchrow("SELECT domain_id, project_id, resource_id FROM nodes WHERE id = $1", node_id)
    if node is None:  # deleted before the worker got to it
        return False
    domain_id = await conn.fetchval(_ANCHOR_SQL, uuid7(), utcnow(), node_id)
    if domain_id is None:
        return False
    await psk.issue_node_psk(conn, runtime.keyring, node_id)
    project = str(node["project_id"])
    await grant(conn, "node", str(node_id), "parent", "project", project, project_id=node["project_id"])
    await grant(conn, "resource", str(node["resource_id"]), "parent", "project", project,
                project_id=node["project_id"])
    # The Node is the agent of itself: `node-agent` routes then authorise its own NSK by the schema.
    await grant(conn, "node", str(node_id), "agent", "node", str(node_id), project_id=node["project_id"])
    peer = psk.peer_object(await peers_db.peer_row(conn, node_id))
    await events.append(conn, runtime.signing, domain_id, "peer_added", peer, exclude_node_id=node_id)
    return True


@handler("node.registered")
async def on_node_registered(conn: asyncpg.Connection, runtime: Runtime, payload: dict[str, Any]) -> None:
    await anchor(conn, runtime, uuid.UUID(payload["node_id"]))
