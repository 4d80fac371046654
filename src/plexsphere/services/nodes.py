"""Node use cases for operators (list, get, delete) and for the Node itself (state snapshot, its
pairwise PSKs). One transaction each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.domain import nodes as rules
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.services import events, peer_list, psk, relays
from plexsphere.services.addressing import release_address
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import format_go_duration, rfc3339

EMPTY_REPORTS = {"metadata": [], "data": [], "reports": []}

_SUMMARY_COLUMNS = """
n.id, n.domain_id, n.project_id, n.name, n.created_at, host(n.mesh_ip) AS mesh_ip, p.reachability,
CASE WHEN n.kind = 'bridge' THEN 'bridge' ELSE r.kind END AS kind,
CASE WHEN p.endpoint_stale THEN NULL ELSE p.endpoint END AS endpoint, p.nat_type
"""

_LIST_SQL = f"""
SELECT {_SUMMARY_COLUMNS}
  FROM nodes n
  JOIN resources r ON r.id = n.resource_id
  LEFT JOIN peers p ON p.node_id = n.id
 WHERE ($1::uuid IS NULL OR n.domain_id = $1)
   AND ($2::uuid IS NULL OR n.project_id = $2)
   AND ($3::uuid IS NULL OR n.id > $3)
   AND ($4 OR n.domain_id = ANY($5::uuid[]) OR n.project_id = ANY($6::uuid[]) OR n.id = ANY($7::uuid[]))
 ORDER BY n.id
 LIMIT $8
"""

_GET_SQL = f"""
SELECT {_SUMMARY_COLUMNS}
  FROM nodes n JOIN resources r ON r.id = n.resource_id LEFT JOIN peers p ON p.node_id = n.id
 WHERE n.id = $1
"""

_CALLER_TUPLES_SQL = """
SELECT object_type, object_id, relation FROM relation_tuples
 WHERE subject_type = $1 AND subject_id = $2 AND subject_relation = ''
   AND object_type IN ('platform', 'domain', 'project', 'node')
"""


def summary(row: asyncpg.Record) -> dict[str, Any]:
    """NodeSummary: the contract's fields plus additive project_id, mesh_ip, reachability (absent
    until the Node is anchored), endpoint and nat_type (absent until reported)."""
    item: dict[str, Any] = {
        "id": str(row["id"]),
        "domain_id": str(row["domain_id"]),
        "created_at": rfc3339(row["created_at"]),
        "name": row["name"],
        "kind": row["kind"],
        "project_id": str(row["project_id"]),
        "mesh_ip": row["mesh_ip"],
    }
    if row["reachability"] is not None:
        item["reachability"] = row["reachability"]
    # Additive: the Node's reported underlay endpoint (while fresh) and NAT type (docs/nat.md).
    if row["endpoint"] is not None:
        item["endpoint"] = row["endpoint"]
    if row["nat_type"] is not None:
        item["nat_type"] = row["nat_type"]
    return item


async def list_nodes(
    pool: asyncpg.Pool, subject: str, *, domain_id: uuid.UUID | None, project_id: uuid.UUID | None,
    after: uuid.UUID | None, limit: int,
) -> tuple[list[dict[str, Any]], uuid.UUID | None]:
    """A page of the Nodes the caller may view, filtered in SQL from the caller's own tuples (one
    query for them, one for the page: no per-row permission checks). Returns (items, last id when
    there may be more)."""
    subject_type, _, subject_id = subject.partition(":")
    async with pool.acquire() as conn:
        seen = rules.visibility(
            (r["object_type"], r["object_id"], r["relation"])
            for r in await conn.fetch(_CALLER_TUPLES_SQL, subject_type, subject_id)
        )
        rows = await conn.fetch(
            _LIST_SQL, domain_id, project_id, after, seen.everything,
            _uuids(seen.domain_ids), _uuids(seen.project_ids), _uuids(seen.node_ids), limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return [summary(r) for r in rows], (rows[-1]["id"] if more and rows else None)


def _uuids(values: set[str]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


async def get_node(pool: asyncpg.Pool, node_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(_GET_SQL, node_id)
    if row is None:
        raise not_found("node_not_found", "node")
    return summary(row)


async def delete_node(pool: asyncpg.Pool, signing: SigningKeys, node_id: uuid.UUID) -> None:
    """One transaction: the Node row goes (its Peer, PSKs and rotations cascade, so its NSK stops
    working at once), its address returns to the pool, its tuples go, and the Domain hears
    `peer_removed`."""
    async with pool.acquire() as conn, conn.transaction():
        relaying = await relays.is_relaying(conn, node_id)
        row = await conn.fetchrow("DELETE FROM nodes WHERE id = $1 RETURNING domain_id, host_offset", node_id)
        if row is None:
            raise not_found("node_not_found", "node")
        if relaying:  # its relayed edges move to the next relay: tell the Domain at once
            await relays.bridge_changed(conn, signing, row["domain_id"], node_id)
        await release_address(conn, row["domain_id"], row["host_offset"])
        await conn.execute(
            """DELETE FROM relation_tuples
                WHERE (object_type = 'node' AND object_id = $1) OR (subject_type = 'node' AND subject_id = $1)""",
            str(node_id),
        )
        # Sent even if the Node was never anchored: the anchoring may have committed concurrently,
        # and a removal of an unknown peer is a no-op for an agent.
        await events.append(conn, signing, row["domain_id"], "peer_removed", {"node_id": str(node_id)})


# -- the Node's own view --------------------------------------------------------------------------
# The Domain's latest event seq rides along: the peer list needs nothing else when it is current.
_STATE_NODE_SQL = """
SELECT n.domain_id, n.created_at, n.kind, p.reachability, p.reachability_changed_at, p.last_heartbeat_at,
       d.heartbeat_interval_s,
       (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.domain_id = n.domain_id) AS latest_seq
  FROM nodes n JOIN domains d ON d.id = n.domain_id LEFT JOIN peers p ON p.node_id = n.id
 WHERE n.id = $1
"""


def reachability_object(row: asyncpg.Record) -> dict[str, Any]:
    """The Reachability of a Node. Before anchoring (a moment after register) it reads healthy since
    creation: anchoring is about to make it so, and the agent must not treat itself as cut off."""
    if row["reachability"] is None:
        return {"state": "healthy", "last_heartbeat_at": None, "changed_at": rfc3339(row["created_at"])}
    return {
        "state": row["reachability"],
        "last_heartbeat_at": rfc3339(row["last_heartbeat_at"]),
        "changed_at": rfc3339(row["reachability_changed_at"]),
    }


async def node_state(pool: asyncpg.Pool, node_id: uuid.UUID, *, stun_port: int = 0) -> dict[str, Any]:
    """NodeStateSnapshot. Deterministic: the same ledger gives a byte-identical body. The peers come
    from the Domain's peer list (services/peer_list.py), current as of this read."""
    node = await pool.fetchrow(_STATE_NODE_SQL, node_id)
    if node is None:
        raise not_found("node_not_found", "node")
    domain_relays = await relays.domain_relays(pool, node["domain_id"])
    is_bridge = node["kind"] == "bridge"
    # Bridges are reached directly and never relay for themselves: no fallbacks in their view.
    relay_endpoint = domain_relays[0].endpoint if domain_relays and not is_bridge else None
    projection = await peer_list.peer_lists(pool).projection(pool, node["domain_id"], node["latest_seq"])
    peers = projection.as_json(str(node_id), relay_endpoint)
    return {
        "peers": orjson.Fragment(peers),  # already JSON: spliced in, not re-encoded
        "reachability": reachability_object(node),
        "policy": None,
        "bridge": await relays.node_bridge_block(pool, node_id, projection) if is_bridge else None,
        "state": EMPTY_REPORTS,
        "reports": EMPTY_REPORTS,
        # Additive (DECISIONS 7 style): the Domain's heartbeat cadence, so agents beat at it.
        "heartbeat_interval": format_go_duration(node["heartbeat_interval_s"]),
        # Additive: the Domain's relays in preference order. A Node falls back to the first one it
        # can reach (fallback_endpoint names the first); bridges are left out of their own list.
        "relays": [{"node_id": r.node_id, "endpoint": r.endpoint} for r in domain_relays
                   if r.node_id != str(node_id)],
        # Additive: the control plane's STUN port (on the host of the URL the Node uses), if any.
        "stun_port": stun_port or None,
    }


@dataclass(frozen=True)
class SealedPsk:
    envelope: bytes  # 12-byte nonce ‖ AES-256-GCM(edge PSK ‖ tag) under the caller's NSK
    kid: str
    epoch: int


async def sealed_peer_psk(
    pool: asyncpg.Pool, keyring: Keyring, node_id: uuid.UUID, domain_id: uuid.UUID, peer_node_id: uuid.UUID,
    nsk: bytes,
) -> SealedPsk:
    """DECISIONS 6. `nsk` is the caller's own NSK, already verified by its digest."""
    if peer_node_id == node_id:
        raise not_found("peer_not_found", "peer")
    async with pool.acquire() as conn:
        anchored = await conn.fetchval(
            "SELECT count(*) FROM peers WHERE node_id = ANY($1::uuid[]) AND domain_id = $2",
            [node_id, peer_node_id], domain_id,
        )
        if anchored != 2:
            raise not_found("peer_not_found", "peer")
        try:
            material = await psk.edge_psk_material(conn, keyring, node_id, peer_node_id)
        except psk.MissingPskError:
            raise ProblemError(404, "peer_not_found", "the edge has no pairwise key yet") from None
    return SealedPsk(crypto.seal_for_node(nsk, material.psk), material.kid, material.epoch)
