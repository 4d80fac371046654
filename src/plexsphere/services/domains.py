"""Domain use cases: each one transaction, authorization checked before anything is loaded."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.crypto import Keyring
from plexsphere.db import domains as db
from plexsphere.domain import domains as rules
from plexsphere.domain.authz import PLATFORM_ID, parse_ref
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import parse_uuid
from plexsphere.services import authz
from plexsphere.services.bootstrap import host_capacity, insert_domain
from plexsphere.timeutil import format_go_duration, rfc3339, utcnow


def parse_domain_id(text: str) -> uuid.UUID:
    domain_id = parse_uuid(text)
    if domain_id is None:
        raise ProblemError(400, "invalid_domain_id", "domain id must be a non-nil UUID")
    return domain_id


def to_wire(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "name": row["name"],
        "slug": row["slug"],
        "description": row["description"] or "",
        "mesh_cidr": row["mesh_cidr"],
        "reachability": rules.Reachability(
            row["heartbeat_interval_s"], row["stale_after_s"], row["unreachable_after_s"]).as_wire(),
        "env": row["env"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }
    if row["region"]:
        out["region"] = row["region"]
    if row["max_key_age_s"]:
        out["max_key_age"] = format_go_duration(row["max_key_age_s"])
    return out


def _map_conflict(exc: asyncpg.IntegrityConstraintViolationError, slug: str | None = None) -> ProblemError:
    if isinstance(exc, asyncpg.ExclusionViolationError):
        return ProblemError(409, "mesh_cidr_overlap", "mesh_cidr overlaps another Domain's mesh_cidr")
    if isinstance(exc, asyncpg.UniqueViolationError) and "slug" in (exc.constraint_name or ""):
        return ProblemError(409, "domain_slug_conflict", f"a Domain with slug {slug!r} already exists")
    raise exc


async def create(pool: asyncpg.Pool, keyring: Keyring, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    await authz.require(pool, subject, "platform-admin", f"platform:{PLATFORM_ID}")
    spec = rules.parse_create(body)
    reach = spec.reachability
    try:
        async with pool.acquire() as conn, conn.transaction():
            domain_id = await insert_domain(
                conn, keyring, slug=spec.slug, name=spec.name, mesh_cidr=spec.mesh_cidr, env=spec.env,
                description=spec.description, region=spec.region, created_by=subject,
                reachability=(reach.heartbeat_interval_s, reach.stale_after_s, reach.unreachable_after_s),
                max_key_age_s=spec.max_key_age_s,
            )
            row = await db.get(conn, domain_id)
    except (asyncpg.ExclusionViolationError, asyncpg.UniqueViolationError) as exc:
        raise _map_conflict(exc, spec.slug) from None
    return to_wire(row)


async def get(pool: asyncpg.Pool, subject: str, domain_id: uuid.UUID) -> dict[str, Any]:
    await authz.require(pool, subject, "domain-view", f"domain:{domain_id}")
    row = await db.get(pool, domain_id)
    if row is None:
        raise not_found("domain_not_found", "Domain")
    return to_wire(row)


async def list_page(pool: asyncpg.Pool, subject: str, after_slug: str | None, limit: int
                    ) -> tuple[list[dict[str, Any]], str | None, bool]:
    """(items, last slug when another page follows, whether Domains exist that the caller cannot see
    while it sees none)."""
    subject_ref = parse_ref(subject)
    assert subject_ref is not None
    rows, any_rows = await db.list_visible(pool, subject_ref, after_slug, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = rows[-1]["slug"] if more else None
    hidden_only = not rows and any_rows and after_slug is None
    return [to_wire(r) for r in rows], next_after, hidden_only


async def patch(pool: asyncpg.Pool, subject: str, domain_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    await authz.require(pool, subject, "domain-admin", f"domain:{domain_id}")
    changes = rules.parse_patch(body).changes()
    columns: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "reachability":
            columns.update(heartbeat_interval_s=value.heartbeat_interval_s, stale_after_s=value.stale_after_s,
                           unreachable_after_s=value.unreachable_after_s)
        else:
            columns[key] = value
    try:
        async with pool.acquire() as conn, conn.transaction():
            current = await db.get(conn, domain_id, for_update=True)
            if current is None:
                raise not_found("domain_not_found", "Domain")
            new_cidr = columns.get("mesh_cidr")
            if new_cidr is not None and new_cidr != current["mesh_cidr"]:
                await _guard_retarget(conn, domain_id, new_cidr)
            elif new_cidr is not None:
                del columns["mesh_cidr"]
            row = await db.update(conn, domain_id, columns, utcnow())
            if new_cidr is not None and new_cidr != current["mesh_cidr"]:
                await db.reset_address_pool(conn, domain_id, min(host_capacity(new_cidr), 2**63 - 1))
    except (asyncpg.ExclusionViolationError, asyncpg.UniqueViolationError) as exc:
        raise _map_conflict(exc) from None
    return to_wire(row)


async def _guard_retarget(conn: asyncpg.Connection, domain_id: uuid.UUID, new_cidr: str) -> None:
    # Project sub-ranges first: the contract names this refusal and its offending project.
    stranded = rules.stranded_sub_ranges(new_cidr, await db.sub_ranges(conn, domain_id))
    if stranded:
        project_id, sub = stranded[0]
        raise ProblemError(422, "mesh_cidr_invalidates_subrange",
                           f"project {project_id} reserves sub_range {sub}, which lies outside {new_cidr}")
    # Nodes hold addresses (and peers hold them in their WireGuard configs) from the old CIDR;
    # renumbering a live mesh is not something a PATCH can do safely.
    nodes = await db.node_count(conn, domain_id)
    if nodes:
        raise ProblemError(409, "mesh_cidr_in_use",
                           f"the Domain has {nodes} enrolled node(s) holding addresses in its current mesh_cidr; "
                           "remove them before retargeting")


async def delete(pool: asyncpg.Pool, subject: str, domain_id: uuid.UUID) -> None:
    await authz.require(pool, subject, "domain-admin", f"domain:{domain_id}")
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                # The row lock makes concurrent child inserts (which take KEY SHARE through their
                # foreign key) wait for us, so the counts below cannot go stale before the delete.
                if await db.get(conn, domain_id, for_update=True) is None:
                    raise not_found("domain_not_found", "Domain")
                counts = await db.child_counts(conn, domain_id)
                if any(counts.values()):
                    raise _not_empty(counts)
                await db.delete(conn, domain_id)
        except asyncpg.ForeignKeyViolationError:
            raise _not_empty(await db.child_counts(conn, domain_id)) from None


def _not_empty(counts: dict[str, int]) -> ProblemError:
    return ProblemError(409, "domain_not_empty", rules.child_count_detail(counts), title="Domain Not Empty",
                        child_counts=counts)

