"""Resource use cases. Reads and writes of one Resource are authorised on `resource:<id>`, whose
parent tuple the mirror writes (resource.created), so a denial never reveals whether it exists."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from plexsphere.db import resources as db
from plexsphere.domain import resources as rules
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import parse_uuid, uuid7
from plexsphere.services import authz, outbox
from plexsphere.timeutil import parse_rfc3339, rfc3339, utcnow


def parse_resource_id(text: str) -> uuid.UUID:
    resource_id = parse_uuid(text)
    if resource_id is None:
        raise ProblemError(400, "invalid_resource_id", "resource id must be a non-nil UUID")
    return resource_id


def to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "project_id": str(row["project_id"]),
        "domain_id": str(row["domain_id"]),
        "kind": row["kind"],
        "origin": row["origin"],
        "external_ref": row["external_ref"],
        "handle": row["handle"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


async def create(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    await authz.require(pool, subject, "project-edit", f"project:{project_id}")
    spec = rules.parse_create(body)
    if spec.origin == "provisioned":
        raise ProblemError(501, "resources_not_provisioned",
                           "provisioned Resources need a blueprint and cloud credential backend, which this "
                           "deployment does not run; create an adopted Resource instead",
                           title="Not Implemented")
    resource_id = uuid7()
    handle = spec.handle or spec.external_ref or str(resource_id)
    try:
        async with pool.acquire() as conn, conn.transaction():
            domain_id = await db.project_domain(conn, project_id)
            if domain_id is None:
                raise not_found("project_not_found", "Project")
            row = await db.insert(conn, resource_id=resource_id, project_id=project_id, domain_id=domain_id,
                                  handle=handle, kind=spec.kind, origin=spec.origin,
                                  external_ref=spec.external_ref, now=utcnow())
            await outbox.enqueue(conn, "resource.created", {"resource_id": str(resource_id),
                                                            "project_id": str(project_id)})
    except asyncpg.UniqueViolationError:
        raise ProblemError(409, "resource_handle_conflict",
                           f"the Project already has a Resource with handle {handle!r}") from None
    except asyncpg.ForeignKeyViolationError:
        raise not_found("project_not_found", "Project") from None
    return to_wire(row)


async def get(pool: asyncpg.Pool, subject: str, resource_id: uuid.UUID) -> dict[str, Any]:
    await authz.require(pool, subject, "resource-view", f"resource:{resource_id}")
    row = await db.get(pool, resource_id)
    if row is None:
        raise not_found("resource_not_found", "Resource")
    return to_wire(row)


async def list_page(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID, after: list[Any] | None, limit: int
                    ) -> tuple[list[dict[str, Any]], list[str] | None]:
    await authz.require(pool, subject, "project-view", f"project:{project_id}")
    keyset: tuple[datetime, uuid.UUID] | None = None
    if after is not None:
        at = parse_rfc3339(after[0]) if len(after) == 2 and isinstance(after[0], str) else None
        last_id = parse_uuid(after[1]) if at and isinstance(after[1], str) else None
        if last_id is None or at is None:
            raise ProblemError(400, "invalid_cursor", "cursor is malformed")
        keyset = (at, last_id)
    if keyset is None and await db.project_domain(pool, project_id) is None:
        raise not_found("project_not_found", "Project")
    rows = await db.list_page(pool, project_id, keyset, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    # Full precision in the cursor: rfc3339 keeps microseconds, so the keyset is exact.
    next_after = [rfc3339(rows[-1]["created_at"]), str(rows[-1]["id"])] if more else None
    return [to_wire(r) for r in rows], next_after


async def delete(pool: asyncpg.Pool, subject: str, resource_id: uuid.UUID) -> None:
    await authz.require(pool, subject, "resource-edit", f"resource:{resource_id}")
    async with pool.acquire() as conn, conn.transaction():
        if await db.get(conn, resource_id, for_update=True) is None:
            raise not_found("resource_not_found", "Resource")
        node_id = await db.bound_node(conn, resource_id)
        if node_id is not None:
            raise ProblemError(409, "resource_in_use", f"node {node_id} is enrolled against this Resource; "
                               "delete the node first")
        await db.delete(conn, resource_id)
