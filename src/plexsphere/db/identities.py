"""SQL for identities (read side; the auth area creates them)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

COLUMNS = """i.id, i.kind, i.domain_id, i.display_name, i.email, i.external_subject, i.last_sign_in_at,
             i.created_at, i.updated_at"""


async def domain_exists(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM domains WHERE id = $1", domain_id))


async def list_page(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID, kind: str | None,
                    before: tuple[datetime, uuid.UUID] | None, limit: int) -> list[asyncpg.Record]:
    """Newest first: (created_at DESC, id DESC), served by identities_domain_created."""
    before_at, before_id = before if before else (None, None)
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM identities i
             WHERE i.domain_id = $1 AND ($2::text IS NULL OR i.kind = $2)
               AND ($3::timestamptz IS NULL OR (i.created_at, i.id) < ($3, $4::uuid))
             ORDER BY i.created_at DESC, i.id DESC LIMIT $5""",
        domain_id, kind, before_at, before_id, limit + 1,
    )


async def get(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID, identity_id: uuid.UUID
              ) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM identities i WHERE i.id = $1 AND i.domain_id = $2",
                               identity_id, domain_id)
