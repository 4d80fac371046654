"""The Domain's mesh topology: anchored Nodes with reachability, and the N·(N−1) directed edges
generated on the fly from that node list (domain/topology.py) — one query, O(N) memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import asyncpg
import orjson

from plexsphere.db import peers as peers_db
from plexsphere.domain import topology as rules
from plexsphere.domain.errors import not_found
from plexsphere.domain.relays import Relay
from plexsphere.services.relays import domain_relays
from plexsphere.timeutil import rfc3339, utcnow


async def topology_nodes(pool: asyncpg.Pool, domain_id: uuid.UUID
                         ) -> tuple[list[rules.TopologyNode], list[Relay]]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM domains WHERE id = $1)", domain_id):
            raise not_found("domain_not_found", "domain")
        rows = await peers_db.topology_rows(conn, domain_id)
        relays = await domain_relays(conn, domain_id)
    nodes = [rules.TopologyNode(str(r["node_id"]), r["mesh_ip"], r["reachability"], r["nat_type"], r["is_bridge"],
                                r["relayed_peers"])  # jsonb arrives decoded (db/pool.py)
             for r in rows]
    return nodes, relays


async def topology_stream(pool: asyncpg.Pool, domain_id: uuid.UUID, *, summary: bool = False) -> Iterator[bytes]:
    """The MeshTopology document as chunks. With `summary`, `edges` is empty and edge counts by mode
    and status are added (edge_count, edges_by_mode, edges_by_status) for very large Domains."""
    nodes, relays = await topology_nodes(pool, domain_id)
    generated_at = rfc3339(utcnow())
    if summary:
        return _summary_body(str(domain_id), generated_at, nodes, relays)
    return rules.stream_json(str(domain_id), generated_at, nodes, relays)


def _summary_body(domain_id: str, generated_at: str, nodes: list[rules.TopologyNode],
                  relays: list[Relay]) -> Iterator[bytes]:
    # A generator, so the encoding runs where the response body is produced, not here.
    yield orjson.dumps({
        "domain_id": domain_id,
        "generated_at": generated_at,
        "nodes": [{"node_id": n.node_id, "mesh_ip": n.mesh_ip, "reachability": n.reachability} for n in nodes],
        "edges": [],
        **rules.summary(nodes, relays),
    })
