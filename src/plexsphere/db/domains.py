"""SQL for Domains."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.services.authz import visible_sql

COLUMNS = """d.id, d.slug, d.name, d.description, d.region, d.env, d.mesh_cidr::text AS mesh_cidr,
             d.heartbeat_interval_s, d.stale_after_s, d.unreachable_after_s, d.max_key_age_s,
             d.created_at, d.updated_at"""


async def get(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID, *, for_update: bool = False
              ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM domains d WHERE d.id = $1{lock}", domain_id)


async def get_by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM domains d WHERE d.slug = $1", slug)


async def list_visible(conn: asyncpg.Connection | asyncpg.Pool, subject: tuple[str, str], after_slug: str | None,
                       limit: int) -> tuple[list[asyncpg.Record], bool]:
    """One query: up to limit+1 visible Domains after `after_slug` in slug order, and whether any
    Domain exists at all (for `empty_reason`)."""
    predicate = visible_sql("domain", "domain-view", "d.id::text", "$1", "$2")
    rows = await conn.fetch(
        f"""SELECT x.any_rows, p.*
              FROM (SELECT EXISTS (SELECT 1 FROM domains) AS any_rows) x
              LEFT JOIN LATERAL (
                   SELECT {COLUMNS} FROM domains d
                    WHERE ($3::text IS NULL OR d.slug > $3) AND {predicate}
                    ORDER BY d.slug LIMIT $4
              ) p ON true""",
        subject[0], subject[1], after_slug, limit + 1,
    )
    any_rows = bool(rows and rows[0]["any_rows"])
    return [r for r in rows if r["id"] is not None], any_rows


async def child_counts(conn: asyncpg.Connection, domain_id: uuid.UUID) -> dict[str, int]:
    # Groups and IdP bindings belong to other areas; count them when their tables exist.
    optional = await conn.fetchrow(
        "SELECT to_regclass('groups') IS NOT NULL AS groups, to_regclass('idp_bindings') IS NOT NULL AS idp")
    groups_sql = "(SELECT count(*) FROM groups WHERE domain_id = $1)" if optional["groups"] else "0"
    idp_sql = "(SELECT count(*) FROM idp_bindings WHERE domain_id = $1)" if optional["idp"] else "0"
    row = await conn.fetchrow(
        f"""SELECT (SELECT count(*) FROM projects WHERE domain_id = $1) AS projects,
                   {groups_sql} AS groups,
                   (SELECT count(*) FROM identities WHERE domain_id = $1) AS identities,
                   {idp_sql} AS idp_bindings,
                   (SELECT count(*) FROM nodes WHERE domain_id = $1) AS nodes""",
        domain_id,
    )
    return {k: int(row[k]) for k in ("projects", "groups", "identities", "idp_bindings", "nodes")}


async def sub_ranges(conn: asyncpg.Connection, domain_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    rows = await conn.fetch(
        "SELECT id, sub_range_cidr::text AS sub FROM projects WHERE domain_id = $1 AND sub_range_cidr IS NOT NULL",
        domain_id,
    )
    return [(r["id"], r["sub"]) for r in rows]


async def node_count(conn: asyncpg.Connection, domain_id: uuid.UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM nodes WHERE domain_id = $1", domain_id)


_UPDATABLE = {
    "name": "name", "description": "description", "region": "region", "mesh_cidr": "mesh_cidr",
    "max_key_age_s": "max_key_age_s", "heartbeat_interval_s": "heartbeat_interval_s",
    "stale_after_s": "stale_after_s", "unreachable_after_s": "unreachable_after_s",
}


async def update(conn: asyncpg.Connection, domain_id: uuid.UUID, columns: dict[str, Any], now: Any
                 ) -> asyncpg.Record:
    sets = []
    args: list[Any] = [domain_id, now]
    for key, value in columns.items():
        column = _UPDATABLE[key]
        args.append(value)
        cast = "::cidr" if column == "mesh_cidr" else ""
        sets.append(f"{column} = ${len(args)}{cast}")
    return await conn.fetchrow(
        f"UPDATE domains d SET {', '.join(sets)}, updated_at = $2 WHERE d.id = $1 RETURNING {COLUMNS}", *args
    )


async def reset_address_pool(conn: asyncpg.Connection, domain_id: uuid.UUID, last_offset: int) -> None:
    """After a retarget (only allowed while the Domain holds no Node) the allocator starts afresh."""
    await conn.execute(
        "UPDATE address_pools SET next_offset = 1, last_offset = $2 WHERE domain_id = $1", domain_id, last_offset
    )
    await conn.execute("DELETE FROM released_addresses WHERE domain_id = $1", domain_id)


async def delete(conn: asyncpg.Connection, domain_id: uuid.UUID) -> None:
    """Removes an empty Domain and what hangs off it (signing keys, pool, device codes cascade);
    its tuples and event log go explicitly since they reference it by text."""
    await conn.execute(
        """DELETE FROM relation_tuples
            WHERE (object_type = 'domain' AND object_id = $1::text)
               OR (subject_type = 'domain' AND subject_id = $1::text)""",
        str(domain_id),
    )
    await conn.execute("DELETE FROM events WHERE domain_id = $1", domain_id)
    await conn.execute("DELETE FROM domains WHERE id = $1", domain_id)
