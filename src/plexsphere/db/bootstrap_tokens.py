"""SQL of bootstrap tokens (administration; redemption lives in the registration statement)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

_COLUMNS = "id, project_id, kind, env_prefix, issued_at, expires_at, consumed_at, revoked_at, issued_by_user_id"


async def project_domain(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval("SELECT domain_id FROM projects WHERE id = $1", project_id)


async def insert(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    token_id: uuid.UUID,
    project_id: uuid.UUID,
    kind: str,
    env_prefix: str,
    digest: bytes,
    issued_by: uuid.UUID,
    issued_at: datetime,
    expires_at: datetime,
) -> bool:
    """One statement: the Project's Domain is read in the insert, so a missing Project writes
    nothing and returns False."""
    status = await conn.execute(
        """INSERT INTO bootstrap_tokens (id, project_id, domain_id, kind, env_prefix, digest, issued_by_user_id,
                                         issued_at, expires_at)
           SELECT $1, p.id, p.domain_id, $3, $4, $5, $6, $7, $8 FROM projects p WHERE p.id = $2""",
        token_id, project_id, kind, env_prefix, digest, issued_by, issued_at, expires_at,
    )
    return status.endswith(" 1")


async def get(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID,
              token_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM bootstrap_tokens WHERE id = $1 AND project_id = $2", token_id, project_id
    )


async def page(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID,
               after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[asyncpg.Record]:
    if after is None:
        return await conn.fetch(
            f"""SELECT {_COLUMNS} FROM bootstrap_tokens WHERE project_id = $1
                ORDER BY issued_at, id LIMIT $2""",
            project_id, limit,
        )
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM bootstrap_tokens WHERE project_id = $1 AND (issued_at, id) > ($2, $3)
            ORDER BY issued_at, id LIMIT $4""",
        project_id, after[0], after[1], limit,
    )


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID,
                 token_id: uuid.UUID) -> bool:
    """Conditional: only a live token flips. A registration holding the row waits us out, and the
    re-checked WHERE then sees it consumed, so exactly one of the two wins."""
    status = await conn.execute(
        """UPDATE bootstrap_tokens SET revoked_at = now()
            WHERE id = $1 AND project_id = $2 AND consumed_at IS NULL AND revoked_at IS NULL""",
        token_id, project_id,
    )
    return status.endswith(" 1")
