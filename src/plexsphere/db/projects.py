"""SQL for Projects."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.services.authz import visible_sql

COLUMNS = """p.id, p.domain_id, p.slug, p.name, p.description, p.sub_range_cidr::text AS sub_range_cidr,
             p.created_by, p.created_at, p.updated_at"""


async def get(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID, *, for_update: bool = False
              ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM projects p WHERE p.id = $1{lock}", project_id)


async def lock_domain(conn: asyncpg.Connection, domain_id: uuid.UUID) -> asyncpg.Record | None:
    """Serialises sub-range reservations within a Domain (and waits out a Domain delete). NO KEY
    UPDATE does not conflict with the KEY SHARE locks Node inserts take, so enrolment is not held up."""
    return await conn.fetchrow(
        "SELECT id, mesh_cidr::text AS mesh_cidr FROM domains WHERE id = $1 FOR NO KEY UPDATE", domain_id
    )


async def insert(conn: asyncpg.Connection, project_id: uuid.UUID, domain_id: uuid.UUID, slug: str, name: str,
                 description: str, sub_range_cidr: str | None, created_by: uuid.UUID | None, now: Any
                 ) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO projects AS p (id, domain_id, slug, name, description, sub_range_cidr, created_by,
                                      created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6::cidr, $7, $8, $8) RETURNING {COLUMNS}""",
        project_id, domain_id, slug, name, description, sub_range_cidr, created_by, now,
    )


async def sibling_sub_ranges(conn: asyncpg.Connection, domain_id: uuid.UUID, exclude: uuid.UUID | None
                             ) -> list[tuple[uuid.UUID, str]]:
    rows = await conn.fetch(
        """SELECT id, sub_range_cidr::text AS sub FROM projects
            WHERE domain_id = $1 AND sub_range_cidr IS NOT NULL AND ($2::uuid IS NULL OR id <> $2)""",
        domain_id, exclude,
    )
    return [(r["id"], r["sub"]) for r in rows]


async def node_addresses(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch("SELECT host(mesh_ip) AS ip FROM nodes WHERE project_id = $1", project_id)
    return [r["ip"] for r in rows]


async def list_visible(conn: asyncpg.Connection | asyncpg.Pool, subject: tuple[str, str],
                       domain_id: uuid.UUID | None, after: tuple[str, str] | None, limit: int
                       ) -> tuple[list[asyncpg.Record], bool]:
    """One query: up to limit+1 visible Projects after the (slug, id) keyset, and whether any
    Project matches the filter at all (for `empty_reason`)."""
    predicate = visible_sql("project", "project-view", "p.id::text", "$1", "$2")
    after_slug, after_id = after if after else (None, None)
    rows = await conn.fetch(
        f"""SELECT x.any_rows, q.*
              FROM (SELECT EXISTS (SELECT 1 FROM projects WHERE $3::uuid IS NULL OR domain_id = $3) AS any_rows) x
              LEFT JOIN LATERAL (
                   SELECT {COLUMNS} FROM projects p
                    WHERE ($3::uuid IS NULL OR p.domain_id = $3)
                      AND ($4::text IS NULL OR (p.slug, p.id) > ($4, $5::uuid))
                      AND {predicate}
                    ORDER BY p.slug, p.id LIMIT $6
              ) q ON true""",
        subject[0], subject[1], domain_id, after_slug, after_id, limit + 1,
    )
    any_rows = bool(rows and rows[0]["any_rows"])
    return [r for r in rows if r["id"] is not None], any_rows


_UPDATABLE = {"name", "description", "sub_range_cidr"}


async def update(conn: asyncpg.Connection, project_id: uuid.UUID, columns: dict[str, Any], now: Any
                 ) -> asyncpg.Record:
    sets = []
    args: list[Any] = [project_id, now]
    for key, value in columns.items():
        assert key in _UPDATABLE
        args.append(value)
        cast = "::cidr" if key == "sub_range_cidr" else ""
        sets.append(f"{key} = ${len(args)}{cast}")
    return await conn.fetchrow(
        f"UPDATE projects p SET {', '.join(sets)}, updated_at = $2 WHERE p.id = $1 RETURNING {COLUMNS}", *args
    )


async def child_counts(conn: asyncpg.Connection, project_id: uuid.UUID) -> dict[str, int]:
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM resources WHERE project_id = $1) AS resources,
                  (SELECT count(*) FROM nodes WHERE project_id = $1) AS nodes,
                  (SELECT count(*) FROM relation_tuples WHERE project_id = $1 AND source = 'api') AS relation_tuples""",
        project_id,
    )
    return {k: int(row[k]) for k in ("resources", "nodes", "relation_tuples")}


async def delete(conn: asyncpg.Connection, project_id: uuid.UUID) -> None:
    """Removes an empty Project: its mirrored tuples and its (now useless) bootstrap tokens go too."""
    await conn.execute(
        """DELETE FROM relation_tuples
            WHERE project_id = $1::uuid
               OR (object_type = 'project' AND object_id = $2)
               OR (subject_type = 'project' AND subject_id = $2)""",
        project_id, str(project_id),
    )
    await conn.execute("DELETE FROM bootstrap_tokens WHERE project_id = $1", project_id)
    await conn.execute("DELETE FROM projects WHERE id = $1", project_id)
