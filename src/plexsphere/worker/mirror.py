"""The authorization mirror: tuples that follow from tenancy changes, written after commit by the
worker. This is the eventual consistency the tutorial describes ("your admin access to a new
Project reaches the authorization mirror a moment after the Project is created").

Every handler is idempotent (grant() ignores an existing tuple), and skips objects deleted before
the worker got to them, so a replayed or late row never resurrects access to a removed object."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.domain.authz import PLATFORM_ID
from plexsphere.server.runtime import Runtime
from plexsphere.services.bootstrap import grant
from plexsphere.worker.outbox import handler


def _creator(payload: dict[str, Any]) -> tuple[str, str] | None:
    created_by = payload.get("created_by")
    if not created_by or ":" not in created_by:
        return None
    subject_type, _, subject_id = created_by.partition(":")
    return subject_type, subject_id


@handler("domain.created")
async def on_domain_created(conn: asyncpg.Connection, runtime: Runtime, payload: dict[str, Any]) -> None:
    domain_id = payload["domain_id"]
    if not await conn.fetchval("SELECT 1 FROM domains WHERE id = $1", uuid.UUID(domain_id)):
        return
    await grant(conn, "domain", domain_id, "parent", "platform", PLATFORM_ID)
    creator = _creator(payload)
    if creator:
        await grant(conn, "domain", domain_id, "admin", *creator)


@handler("project.created")
async def on_project_created(conn: asyncpg.Connection, runtime: Runtime, payload: dict[str, Any]) -> None:
    project_id = payload["project_id"]
    project_uuid = uuid.UUID(project_id)
    if not await conn.fetchval("SELECT 1 FROM projects WHERE id = $1", project_uuid):
        return
    await grant(conn, "project", project_id, "parent", "domain", payload["domain_id"], project_id=project_uuid)
    creator = _creator(payload)
    if creator:
        await grant(conn, "project", project_id, "admin", *creator, project_id=project_uuid)


@handler("resource.created", commutes=True)
async def on_resource_created(conn: asyncpg.Connection, runtime: Runtime, payload: dict[str, Any]) -> None:
    """Enqueued by CreateResource and by the register adoption path; either may run first."""
    resource_id = uuid.UUID(payload["resource_id"])
    project_id = await conn.fetchval("SELECT project_id FROM resources WHERE id = $1", resource_id)
    if project_id is None:
        return
    await grant(conn, "resource", str(resource_id), "parent", "project", str(project_id), project_id=project_id)
