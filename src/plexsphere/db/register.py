"""SQL of the registration: the one-statement transaction. (The peer snapshot comes from
services/peer_list.py.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from plexsphere.server.notify import OUTBOX_CHANNEL

# `latest_seq` (the Domain's event log position, read in this statement's snapshot, so no later
# than the request) saves the peer list a round trip of its own.
_REGISTER_SQL = """
SELECT r.node_id, r.mesh_ip, r.domain_id, r.mesh_cidr, r.env, r.resource_id, r.adopted, r.signing_key_id,
       r.signing_public_key,
       (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.domain_id = r.domain_id) AS latest_seq
  FROM register_node($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) AS r
"""


@dataclass(frozen=True)
class Registered:
    node_id: uuid.UUID
    mesh_ip: str
    domain_id: uuid.UUID
    mesh_cidr: str
    env: str
    resource_id: uuid.UUID
    adopted: bool
    signing_key_id: str
    signing_public_key: bytes
    latest_seq: int


async def register_node(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    token_digest: bytes,
    project_id: uuid.UUID,
    handle: str,
    name: str,
    adopt: bool,
    nonce: str,
    public_key: bytes,
    node_id: uuid.UUID,
    nsk_wrapped: bytes,
    nsk_digest: bytes,
    new_resource_id: uuid.UUID,
    kind: str = "node",
) -> Registered:
    """Runs outside an explicit transaction: the single statement is the transaction. Raises
    asyncpg.RaiseError('<status>:<code>') for contract denials, nothing written. `kind` is the
    seam's token kind: `node` for /v1/register, `bridge` for /v1/bridges/register."""
    row = await conn.fetchrow(
        _REGISTER_SQL, token_digest, project_id, handle, name, adopt, nonce, public_key, node_id, nsk_wrapped,
        nsk_digest, new_resource_id, OUTBOX_CHANNEL, kind,
    )
    return Registered(**dict(row))
