"""SQL for Resources."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = "r.id, r.project_id, r.domain_id, r.handle, r.kind, r.origin, r.external_ref, r.created_at, r.updated_at"


async def get(conn: asyncpg.Connection | asyncpg.Pool, resource_id: uuid.UUID, *, for_update: bool = False
              ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM resources r WHERE r.id = $1{lock}", resource_id)


async def project_domain(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval("SELECT domain_id FROM projects WHERE id = $1", project_id)


async def insert(conn: asyncpg.Connection, *, resource_id: uuid.UUID, project_id: uuid.UUID, domain_id: uuid.UUID,
                 handle: str, kind: str, origin: str, external_ref: str | None, now: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO resources AS r (id, project_id, domain_id, handle, kind, origin, external_ref,
                                       created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}""",
        resource_id, project_id, domain_id, handle, kind, origin, external_ref, now,
    )


async def list_page(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID,
                    after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[asyncpg.Record]:
    after_at, after_id = after if after else (None, None)
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM resources r
             WHERE r.project_id = $1
               AND ($2::timestamptz IS NULL OR (r.created_at, r.id) > ($2, $3::uuid))
             ORDER BY r.created_at, r.id LIMIT $4""",
        project_id, after_at, after_id, limit + 1,
    )


async def bound_node(conn: asyncpg.Connection, resource_id: uuid.UUID) -> Any:
    return await conn.fetchval("SELECT id FROM nodes WHERE resource_id = $1", resource_id)


async def delete(conn: asyncpg.Connection, resource_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM relation_tuples WHERE (object_type = 'resource' AND object_id = $1)"
        " OR (subject_type = 'resource' AND subject_id = $1)",
        str(resource_id),
    )
    await conn.execute("DELETE FROM resources WHERE id = $1", resource_id)
