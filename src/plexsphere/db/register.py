"""SQL of the registration: the one-statement transaction. (The peer snapshot comes from
services/peer_list.py.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from plexsphere.server.notify import OUTBOX_CHANNEL

_REGISTER_SQL = """
SELECT node_id, mesh_ip, domain_id, mesh_cidr, env, resource_id, adopted, signing_key_id, signing_public_key
  FROM register_node($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
) -> Registered:
    """Runs outside an explicit transaction: the single statement is the transaction. Raises
    asyncpg.RaiseError('<status>:<code>') for contract denials, nothing written."""
    row = await conn.fetchrow(
        _REGISTER_SQL, token_digest, project_id, handle, name, adopt, nonce, public_key, node_id, nsk_wrapped,
        nsk_digest, new_resource_id, OUTBOX_CHANNEL,
    )
    return Registered(**dict(row))
