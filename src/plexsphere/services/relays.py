"""Bridge relays: the relay configuration of a bridge Resource (GET/PUT/DELETE
/v1/projects/{project_id}/resources/{resource_id}/bridge/relay) and what the mesh derives from it —
the Domain's ordered relays, each Peer's `fallback_endpoint`, and a bridge Node's relay block with
its per-peer assignments (NodeState.bridge.relay).

Every change a Node must act on appends one Domain-wide `bridge_config_updated` event in the same
transaction; agents answer it with a state pull, which carries the new relays and fallbacks."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.db import peers as peers_db
from plexsphere.db import resources as resources_db
from plexsphere.domain import relays as rules
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.domain.peer_list import PeerProjection
from plexsphere.services import authz, events
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import rfc3339, utcnow

_CONFIG_SQL = "SELECT resource_id, enabled, listen_port, created_at, updated_at FROM bridge_relays WHERE resource_id = $1"

_UPSERT_SQL = """
INSERT INTO bridge_relays AS b (resource_id, domain_id, enabled, listen_port, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5)
ON CONFLICT (resource_id) DO UPDATE SET enabled = $3, listen_port = $4, updated_at = $5
 WHERE (b.enabled, b.listen_port) IS DISTINCT FROM ($3, $4)
RETURNING resource_id, enabled, listen_port, created_at, updated_at
"""

# The bridge Node bound to a Resource, and that Node's fresh endpoint (the relay's host).
_BRIDGE_NODE_SQL = """
SELECT n.id, CASE WHEN p.endpoint_stale THEN NULL ELSE p.endpoint END AS endpoint
  FROM nodes n LEFT JOIN peers p ON p.node_id = n.id
 WHERE n.resource_id = $1 AND n.kind = 'bridge'
"""

_NODE_RELAY_SQL = """
SELECT br.enabled, br.listen_port, CASE WHEN p.endpoint_stale THEN NULL ELSE p.endpoint END AS endpoint
  FROM nodes n JOIN bridge_relays br ON br.resource_id = n.resource_id
  LEFT JOIN peers p ON p.node_id = n.id
 WHERE n.id = $1 AND n.kind = 'bridge'
"""


def to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "resource_id": str(row["resource_id"]),
        "enabled": row["enabled"],
        "listen_port": row["listen_port"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


async def _bridge_resource(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID,
                           resource_id: uuid.UUID, *, for_update: bool = False) -> asyncpg.Record:
    resource = await resources_db.get(conn, resource_id, for_update=for_update)
    if resource is None or resource["project_id"] != project_id:
        raise not_found("resource_not_found", "Resource")
    return resource


def _not_bridge() -> ProblemError:
    return ProblemError(409, "resource_not_bridge", "the addressed Resource is not of kind bridge",
                        title="Resource Not Bridge")


async def get_config(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID, resource_id: uuid.UUID
                     ) -> dict[str, Any]:
    await authz.require(pool, subject, "resource-view", f"resource:{resource_id}")
    await _bridge_resource(pool, project_id, resource_id)
    row = await pool.fetchrow(_CONFIG_SQL, resource_id)
    if row is None:
        raise ProblemError(404, "resource_not_found", "no relay is configured on this Resource",
                           title="Not Found")
    return to_wire(row)


async def put_config(pool: asyncpg.Pool, signing: SigningKeys, subject: str, project_id: uuid.UUID,
                     resource_id: uuid.UUID, body: Any) -> dict[str, Any]:
    """Full replace, last writer wins; an identical configuration changes nothing (no event)."""
    await authz.require(pool, subject, "resource-admin", f"resource:{resource_id}")
    async with pool.acquire() as conn, conn.transaction():
        resource = await _bridge_resource(conn, project_id, resource_id, for_update=True)
        if resource["kind"] != "bridge":
            raise _not_bridge()
        config = rules.parse_relay_config(body)
        row = await conn.fetchrow(_UPSERT_SQL, resource_id, resource["domain_id"], config.enabled,
                                  config.listen_port, utcnow())
        if row is None:  # identical: the idempotent no-op
            return to_wire(await conn.fetchrow(_CONFIG_SQL, resource_id))
        await _announce(conn, signing, resource, row)
    return to_wire(row)


async def delete_config(pool: asyncpg.Pool, signing: SigningKeys, subject: str, project_id: uuid.UUID,
                        resource_id: uuid.UUID) -> None:
    """Removes the relay configuration (additive route; idempotent)."""
    await authz.require(pool, subject, "resource-admin", f"resource:{resource_id}")
    async with pool.acquire() as conn, conn.transaction():
        resource = await _bridge_resource(conn, project_id, resource_id, for_update=True)
        if resource["kind"] != "bridge":
            raise _not_bridge()
        if await conn.fetchval("DELETE FROM bridge_relays WHERE resource_id = $1 RETURNING true", resource_id):
            await _announce(conn, signing, resource, None)


async def _announce(conn: asyncpg.Connection, signing: SigningKeys, resource: asyncpg.Record,
                    row: asyncpg.Record | None) -> None:
    """bridge_config_updated (BridgeConfigUpdatedPayload) to the whole Domain: the bridge programs
    its relay, every other Node re-pulls its fallbacks. Nothing to say while no Node is bound."""
    bridge = await conn.fetchrow(_BRIDGE_NODE_SQL, resource["id"])
    if bridge is None:
        return
    relay = relay_block(row["enabled"], row["listen_port"], []) if row is not None else None
    await events.append(conn, signing, resource["domain_id"], "bridge_config_updated", {
        "node_id": str(bridge["id"]),
        "bridge_resource_id": str(resource["id"]),
        "effective_config": {"relay": relay, "user_access": None, "ingress": None, "site_to_site": None},
    })


async def bridge_changed(conn: asyncpg.Connection, signing: SigningKeys, domain_id: uuid.UUID,
                         node_id: uuid.UUID) -> None:
    """Tells the Domain that a relaying bridge moved (its endpoint changed) or went away, so
    fallbacks are re-pulled at once rather than at the next periodic pull."""
    await events.append(conn, signing, domain_id, "bridge_config_updated", {
        "node_id": str(node_id), "bridge_resource_id": None,
        "effective_config": {"relay": None, "user_access": None, "ingress": None, "site_to_site": None},
    })


async def is_relaying(conn: asyncpg.Connection | asyncpg.Pool, node_id: uuid.UUID) -> bool:
    row = await conn.fetchrow(_NODE_RELAY_SQL, node_id)
    return bool(row and row["enabled"])


# -- what the mesh derives ------------------------------------------------------------------------
async def domain_relays(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> list[rules.Relay]:
    """The Domain's relays in preference order."""
    found = []
    for row in await peers_db.relay_rows(conn, domain_id):
        endpoint = rules.fallback_endpoint(row["endpoint"], row["listen_port"])
        if endpoint:
            found.append(rules.Relay(str(row["node_id"]), row["reachability"], endpoint))
    return rules.relay_order(found)


def relay_block(enabled: bool, listen_port: int, assignments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"enabled": enabled, "listen_port": listen_port, "assignments": assignments}


async def node_bridge_block(conn: asyncpg.Connection | asyncpg.Pool, node_id: uuid.UUID,
                            projection: PeerProjection) -> dict[str, Any]:
    """NodeStateBridge of a bridge Node. Its relay (when configured) lists one assignment per
    Node it may relay for — every anchored non-bridge Node of the Domain, since any pair may fall
    back to any relay — with the host and port that Node dials. No assignments while the relay is
    disabled or the bridge has no fresh endpoint (nobody can dial it)."""
    row = await conn.fetchrow(_NODE_RELAY_SQL, node_id)
    relay = None
    if row is not None:
        assignments: list[dict[str, Any]] = []
        endpoint = rules.fallback_endpoint(row["endpoint"], row["listen_port"]) if row["enabled"] else None
        if endpoint:
            host = endpoint.rpartition(":")[0].strip("[]")
            assignments = [
                {"peer_node_id": peer_id, "fallback_endpoint": host, "fallback_endpoint_port": row["listen_port"]}
                for peer_id in projection.node_ids(bridges=False) if peer_id != str(node_id)
            ]
        relay = relay_block(row["enabled"], row["listen_port"], assignments)
    return {"relay": relay, "user_access": None, "ingress": None, "site_to_site": None}
