"""Per-node PSKs and the peer projection (DECISIONS 6 and 7).

Each Node holds one live per-node PSK (32 random bytes, wrapped under the KEK, bound by associated
data to its node and epoch). The PSK of an edge is never stored: it is derived on demand from both
ends' live per-node PSKs (crypto.derive_edge_psk, inputs ordered by node id), so re-keying one Node
re-keys all its edges with one row written, not N.
"""

from __future__ import annotations

import base64
import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.ids import uuid7
from plexsphere.timeutil import utcnow

PSK_KID = "psk-software-v1"


class MissingPskError(LookupError):
    """A Node of the requested edge has no live per-node PSK (not anchored yet, or deleted)."""


@dataclass(frozen=True)
class EdgePsk:
    psk: bytes  # 32 bytes; never stored, never logged
    kid: str
    # Per-edge epoch: epoch_a + epoch_b - 1. Starts at 1 and grows by one whenever either end
    # rotates, and both ends compute the same number, so agents can tell a stale PSK from a fresh one.
    epoch: int


def node_psk_aad(node_id: uuid.UUID, epoch: int) -> bytes:
    return f"psk:{node_id}:{epoch}".encode()


async def issue_node_psk(conn: asyncpg.Connection, keyring: Keyring, node_id: uuid.UUID) -> tuple[str, int]:
    """Retires the Node's live PSK (if any) and issues the next epoch. Returns (kid, wrap_key_version),
    the reference the rotation receipt and preview show. Call inside the caller's transaction."""
    # The node row lock serialises concurrent issuers for one Node (epoch = previous + 1).
    epoch = await conn.fetchval(
        """SELECT coalesce((SELECT max(epoch) FROM node_psks WHERE node_id = n.id), 0) + 1
             FROM nodes n WHERE n.id = $1 FOR NO KEY UPDATE""",
        node_id,
    )
    if epoch is None:
        raise MissingPskError(f"node {node_id} does not exist")
    await retire_node_psk(conn, node_id)
    wrap_key_version = keyring.active_version
    await conn.execute(
        """INSERT INTO node_psks (id, node_id, kid, wrap_key_version, epoch, psk_wrapped, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        uuid7(), node_id, PSK_KID, wrap_key_version, epoch,
        keyring.wrap(crypto.random_bytes(32), node_psk_aad(node_id, epoch)), utcnow(),
    )
    return PSK_KID, wrap_key_version


async def retire_node_psk(conn: asyncpg.Connection, node_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE node_psks SET retired_at = now() WHERE node_id = $1 AND retired_at IS NULL", node_id
    )


async def live_psk_reference(conn: asyncpg.Connection | asyncpg.Pool, node_id: uuid.UUID) -> tuple[str, int] | None:
    """(kid, wrap_key_version) of the Node's live PSK, or None."""
    row = await conn.fetchrow(
        "SELECT kid, wrap_key_version FROM node_psks WHERE node_id = $1 AND retired_at IS NULL", node_id
    )
    return (row["kid"], row["wrap_key_version"]) if row else None


async def edge_psk_material(
    conn: asyncpg.Connection | asyncpg.Pool, keyring: Keyring, node_a: uuid.UUID, node_b: uuid.UUID
) -> EdgePsk:
    rows = await conn.fetch(
        """SELECT node_id, kid, epoch, psk_wrapped FROM node_psks
            WHERE node_id = ANY($1::uuid[]) AND retired_at IS NULL""",
        [node_a, node_b],
    )
    by_node = {r["node_id"]: r for r in rows}
    missing = [str(n) for n in (node_a, node_b) if n not in by_node]
    if missing or node_a == node_b:
        raise MissingPskError(f"no live per-node PSK for node(s) {', '.join(missing) or str(node_a)}")
    a, b = by_node[node_a], by_node[node_b]
    psk = crypto.derive_edge_psk(
        node_a, keyring.unwrap(a["psk_wrapped"], node_psk_aad(node_a, a["epoch"])),
        node_b, keyring.unwrap(b["psk_wrapped"], node_psk_aad(node_b, b["epoch"])),
    )
    return EdgePsk(psk=psk, kid=a["kid"], epoch=a["epoch"] + b["epoch"] - 1)


async def edge_psk(
    conn: asyncpg.Connection | asyncpg.Pool, keyring: Keyring, node_a: uuid.UUID, node_b: uuid.UUID
) -> bytes:
    """The 32-byte PSK both ends of the edge a–b use. Raises MissingPskError when either end has
    no live per-node PSK."""
    return (await edge_psk_material(conn, keyring, node_a, node_b)).psk


def _host(value: Any) -> str:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value.ip)
    return str(value).split("/", 1)[0]


def peer_object(row: Mapping[str, Any]) -> dict[str, Any]:
    """The peer projection shared by register's peer_snapshot, the state snapshot and peer events:
    {node_id, mesh_ip, public_key (std base64), endpoint?, nat_type?, kind?, fallback_endpoint?}.
    Optional keys are absent (not null) when unknown; `kind` appears only for bridges (`bridge`).
    `row` needs node_id, mesh_ip, public_key and may carry endpoint, nat_type, kind and
    fallback_endpoint."""
    obj: dict[str, Any] = {
        "node_id": str(row["node_id"]),
        "mesh_ip": _host(row["mesh_ip"]),
        "public_key": base64.b64encode(bytes(row["public_key"])).decode(),
    }
    keys = set(row.keys()) if hasattr(row, "keys") else set()  # asyncpg gives an iterator
    if "endpoint" in keys and row["endpoint"]:
        obj["endpoint"] = row["endpoint"]
    if "nat_type" in keys and row["nat_type"]:
        obj["nat_type"] = row["nat_type"]
    if "kind" in keys and row["kind"] == "bridge":
        obj["kind"] = "bridge"
    if "fallback_endpoint" in keys and row["fallback_endpoint"]:
        obj["fallback_endpoint"] = row["fallback_endpoint"]
    return obj
