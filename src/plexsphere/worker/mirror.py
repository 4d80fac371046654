"""The authorization mirror: tuples that follow from tenancy changes, written after commit by the
worker. This is the eventual consistency the tutorial describes ("your admin access to a new
Project reaches the authorization mirror a moment after the Project is created")."""

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
    await grant(conn, "domain", domain_id, "parent", "platform", PLATFORM_ID)
    creator = _creator(payload)
    if creator:
        await grant(conn, "domain", domain_id, "admin", *creator)


@handler("project.created")
async def on_project_created(conn: asyncpg.Connection, runtime: Runtime, payload: dict[str, Any]) -> None:
    project_id = payload["project_id"]
    await grant(conn, "project", project_id, "parent", "domain", payload["domain_id"], project_id=uuid.UUID(project_id))
    creator = _creator(payload)
    if creator:
        await grant(conn, "project", project_id, "admin", *creator, project_id=uuid.UUID(project_id))
