"""Project use cases: each one transaction, authorization checked before anything is loaded."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.db import projects as db
from plexsphere.domain import projects as rules
from plexsphere.domain.authz import parse_ref
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import parse_uuid, uuid7
from plexsphere.services import authz, outbox
from plexsphere.timeutil import rfc3339, utcnow


def parse_project_id(text: str) -> uuid.UUID:
    project_id = parse_uuid(text)
    if project_id is None:
        raise ProblemError(400, "invalid_project_id", "project id must be a non-nil UUID")
    return project_id


def to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "domain_id": str(row["domain_id"]),
        "name": row["name"],
        "slug": row["slug"],
        "description": row["description"] or "",
        "sub_range_cidr": row["sub_range_cidr"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def _identity_uuid(subject: str) -> uuid.UUID | None:
    ref = parse_ref(subject)
    return parse_uuid(ref[1]) if ref else None


async def create(pool: asyncpg.Pool, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    spec = rules.parse_create(body)
    await authz.require(pool, subject, "domain-admin", f"domain:{spec.domain_id}")
    async with pool.acquire() as conn, conn.transaction():
        row = await insert_project(conn, subject, spec)
    return to_wire(row)


async def insert_project(conn: asyncpg.Connection, subject: str, spec: rules.ProjectCreate) -> asyncpg.Record:
    """The write half of CreateProject, inside the caller's transaction: the Project row and the
    project.created outbox row commit together, so the mirror can never grant access to a Project
    that was rolled back, nor before it is visible."""
    try:
        async with conn.transaction():  # a savepoint: a conflict leaves the caller's transaction usable
            domain = await db.lock_domain(conn, spec.domain_id)
            if domain is None:
                raise ProblemError(409, "parent_domain_missing", f"Domain {spec.domain_id} does not exist")
            if spec.sub_range_cidr:
                rules.check_sub_range(spec.sub_range_cidr, domain["mesh_cidr"],
                                      await db.sibling_sub_ranges(conn, spec.domain_id, None))
            row = await db.insert(conn, uuid7(), spec.domain_id, spec.slug, spec.name, spec.description,
                                  spec.sub_range_cidr, _identity_uuid(subject), utcnow())
            # The mirror turns this into project#parent@domain and project#admin@creator after commit.
            await outbox.enqueue(conn, "project.created", {
                "project_id": str(row["id"]), "domain_id": str(spec.domain_id), "created_by": subject,
            })
    except asyncpg.UniqueViolationError:
        raise ProblemError(409, "project_slug_conflict",
                           f"the Domain already has a Project with slug {spec.slug!r}") from None
    except asyncpg.ForeignKeyViolationError:
        raise ProblemError(409, "parent_domain_missing", f"Domain {spec.domain_id} does not exist") from None
    return row


async def get(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID) -> dict[str, Any]:
    await authz.require(pool, subject, "project-view", f"project:{project_id}")
    row = await db.get(pool, project_id)
    if row is None:
        raise not_found("project_not_found", "Project")
    return to_wire(row)


async def list_page(pool: asyncpg.Pool, subject: str, domain_id: uuid.UUID | None, after: tuple[str, str] | None,
                    limit: int) -> tuple[list[dict[str, Any]], tuple[str, str] | None, bool]:
    subject_ref = parse_ref(subject)
    assert subject_ref is not None
    rows, any_rows = await db.list_visible(pool, subject_ref, domain_id, after, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = (rows[-1]["slug"], str(rows[-1]["id"])) if more else None
    hidden_only = not rows and any_rows and after is None
    return [to_wire(r) for r in rows], next_after, hidden_only


async def patch(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    await authz.require(pool, subject, "project-admin", f"project:{project_id}")
    changes = rules.parse_patch(body).changes()
    async with pool.acquire() as conn, conn.transaction():
        current = await db.get(conn, project_id)
        if current is None:
            raise not_found("project_not_found", "Project")
        if changes.get("sub_range_cidr") is not None and changes["sub_range_cidr"] != current["sub_range_cidr"]:
            domain = await db.lock_domain(conn, current["domain_id"])
            new_range = changes["sub_range_cidr"]
            rules.check_sub_range(new_range, domain["mesh_cidr"],
                                  await db.sibling_sub_ranges(conn, current["domain_id"], project_id))
            stranded = rules.addresses_outside(new_range, await db.node_addresses(conn, project_id))
            if stranded:
                raise ProblemError(
                    422, "sub_range_invalidates_allocation",
                    f"project {project_id}: sub_range {new_range} would strand node address {stranded[0]}"
                    f" ({len(stranded)} node(s) outside it)")
        row = await db.update(conn, project_id, changes, utcnow())
    return to_wire(row)


async def delete(pool: asyncpg.Pool, subject: str, project_id: uuid.UUID) -> None:
    await authz.require(pool, subject, "project-admin", f"project:{project_id}")
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                # The row lock makes concurrent child inserts wait for us (their FK takes KEY SHARE).
                if await db.get(conn, project_id, for_update=True) is None:
                    raise not_found("project_not_found", "Project")
                counts = await db.child_counts(conn, project_id)
                if any(counts.values()):
                    raise _not_empty(counts)
                await db.delete(conn, project_id)
        except asyncpg.ForeignKeyViolationError:
            raise _not_empty(await db.child_counts(conn, project_id)) from None


def _not_empty(counts: dict[str, int]) -> ProblemError:
    detail = (f"Project has {counts['resources']} resources, {counts['nodes']} nodes, "
              f"{counts['relation_tuples']} relation_tuples still attached")
    return ProblemError(409, "project_not_empty", detail, title="Project Not Empty", project_child_counts=counts)
