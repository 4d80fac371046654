"""Queries over anchored Peers shared by the state snapshot, anchoring, endpoint reports and the
topology. A Peer's endpoint is projected only while fresh (the sweeper marks it stale)."""

from __future__ import annotations

import uuid

import asyncpg

# The peer projection's columns (services.psk.peer_object reads them).
PEER_COLUMNS = """n.id AS node_id, n.mesh_ip, n.public_key,
       CASE WHEN p.endpoint_stale THEN NULL ELSE p.endpoint END AS endpoint, p.nat_type, n.kind"""

_ONE_SQL = f"SELECT {PEER_COLUMNS} FROM peers p JOIN nodes n ON n.id = p.node_id WHERE p.node_id = $1"

_OTHERS_SQL = f"""
SELECT {PEER_COLUMNS}
  FROM peers p JOIN nodes n ON n.id = p.node_id
 WHERE p.domain_id = $1 AND p.node_id <> $2
 ORDER BY p.node_id
"""

_DOMAIN_SQL = f"""
SELECT {PEER_COLUMNS}
  FROM peers p JOIN nodes n ON n.id = p.node_id
 WHERE p.domain_id = $1
"""

# Bridges whose Resource has an enabled relay and who have a fresh endpoint (domain/relays.py orders them).
_RELAYS_SQL = """
SELECT n.id AS node_id, p.reachability, p.endpoint, br.listen_port
  FROM bridge_relays br
  JOIN nodes n ON n.resource_id = br.resource_id AND n.kind = 'bridge'
  JOIN peers p ON p.node_id = n.id
 WHERE br.domain_id = $1 AND br.enabled AND p.endpoint IS NOT NULL AND NOT p.endpoint_stale
"""

_TOPOLOGY_SQL = """
SELECT p.node_id, host(n.mesh_ip) AS mesh_ip, p.reachability, p.nat_type, n.kind = 'bridge' AS is_bridge,
       p.relayed_peers
  FROM peers p JOIN nodes n ON n.id = p.node_id
 WHERE p.domain_id = $1
 ORDER BY p.node_id
"""


async def peer_row(conn: asyncpg.Connection | asyncpg.Pool, node_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_ONE_SQL, node_id)


async def other_peers(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID,
                      node_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every anchored Peer of the Domain except `node_id`, ordered by node id."""
    return await conn.fetch(_OTHERS_SQL, domain_id, node_id)


async def domain_peers(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every anchored Peer of the Domain with its NAT type, in no particular order (the peer list
    sorts them itself)."""
    return await conn.fetch(_DOMAIN_SQL, domain_id)


async def relay_rows(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> list[asyncpg.Record]:
    """The Domain's bridges that may relay now, unordered."""
    return await conn.fetch(_RELAYS_SQL, domain_id)


async def topology_rows(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_TOPOLOGY_SQL, domain_id)
