"""SQL of the address pool outside registration: giving an address back."""

from __future__ import annotations

import uuid

import asyncpg


async def release(conn: asyncpg.Connection, domain_id: uuid.UUID, host_offset: int) -> bool:
    """Marks `host_offset` free again; True when it was not already free. An offset a Node still
    holds, or one never handed out, is left alone. No pool lock is needed: the allocator only ever
    takes the lowest committed released offset."""
    status = await conn.execute(
        """INSERT INTO released_addresses (domain_id, host_offset)
           SELECT $1, $2::bigint FROM address_pools WHERE domain_id = $1 AND $2::bigint BETWEEN 1 AND next_offset - 1
              AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.domain_id = $1 AND n.host_offset = $2::bigint)
           ON CONFLICT DO NOTHING""",
        domain_id, host_offset,
    )
    return status.endswith(" 1")


async def pool_usage(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT a.next_offset, a.last_offset,
                  (SELECT count(*) FROM released_addresses r WHERE r.domain_id = a.domain_id) AS released
             FROM address_pools a WHERE a.domain_id = $1""",
        domain_id,
    )
