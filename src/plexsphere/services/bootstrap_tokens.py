"""Use cases: issue, read, list and revoke bootstrap tokens. Authorization is checked before the
token or Project is looked up (403 before 404): project-admin to issue/revoke, project-view to read."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from plexsphere import crypto
from plexsphere.db import bootstrap_tokens as tokens_db
from plexsphere.domain import bootstrap_tokens as rules
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import uuid7
from plexsphere.server.auth import OperatorPrincipal
from plexsphere.server.pagination import decode_cursor, encode_cursor
from plexsphere.server.runtime import Runtime
from plexsphere.services import authz
from plexsphere.timeutil import parse_rfc3339, rfc3339, utcnow

ADMIN = "project-admin"
VIEW = "project-view"


def _project_ref(project_id: uuid.UUID) -> str:
    return f"project:{project_id}"


def _token_not_found() -> ProblemError:
    return not_found("bootstrap_token_not_found", "bootstrap token")


def _project_not_found() -> ProblemError:
    return not_found("project_not_found", "project")


def metadata(row: asyncpg.Record) -> dict[str, Any]:
    body = {
        "id": str(row["id"]),
        "project_id": str(row["project_id"]),
        "kind": row["kind"],
        "env_prefix": row["env_prefix"],
        "issued_at": rfc3339(row["issued_at"]),
        "expires_at": rfc3339(row["expires_at"]),
        "issued_by_user_id": str(row["issued_by_user_id"]),
    }
    for field in ("consumed_at", "revoked_at"):
        if row[field] is not None:
            body[field] = rfc3339(row[field])
    return body


async def issue(runtime: Runtime, principal: OperatorPrincipal, project_id: uuid.UUID, body: Any) -> dict[str, Any]:
    await authz.require(runtime.pool, principal.subject, ADMIN, _project_ref(project_id))
    spec = rules.parse_issue_request(body)
    plaintext = rules.format_token(spec.env_prefix, project_id, spec.kind, crypto.random_bytes(rules.RANDOM_BYTES))
    token_id = uuid7()
    issued_at = utcnow()
    expires_at = issued_at + timedelta(seconds=spec.ttl_seconds)
    inserted = await tokens_db.insert(
        runtime.pool,
        token_id=token_id,
        project_id=project_id,
        kind=spec.kind,
        env_prefix=spec.env_prefix,
        digest=runtime.keyring.digest(rules.DIGEST_PURPOSE, plaintext),
        issued_by=principal.identity_id,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    if not inserted:
        raise _project_not_found()
    return {"token_id": str(token_id), "token": plaintext, "issued_at": rfc3339(issued_at),
            "expires_at": rfc3339(expires_at)}


async def get(runtime: Runtime, principal: OperatorPrincipal, project_id: uuid.UUID,
              token_id: uuid.UUID) -> dict[str, Any]:
    await authz.require(runtime.pool, principal.subject, VIEW, _project_ref(project_id))
    row = await tokens_db.get(runtime.pool, project_id, token_id)
    if row is None:
        if await tokens_db.project_domain(runtime.pool, project_id) is None:
            raise _project_not_found()
        raise _token_not_found()
    return metadata(row)


async def list_page(runtime: Runtime, principal: OperatorPrincipal, project_id: uuid.UUID,
                    cursor: str | None, limit: int) -> dict[str, Any]:
    await authz.require(runtime.pool, principal.subject, VIEW, _project_ref(project_id))
    listing = f"bootstrap-tokens:{project_id}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    after = _after(keyset)
    if after is None and await tokens_db.project_domain(runtime.pool, project_id) is None:
        raise _project_not_found()
    rows = await tokens_db.page(runtime.pool, project_id, after, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(runtime.keyring, principal.subject, listing,
                                    [rfc3339(last["issued_at"]), str(last["id"])])
    return {"items": [metadata(r) for r in rows], "next_cursor": next_cursor}


def _after(keyset: list[Any] | None) -> tuple[datetime, uuid.UUID] | None:
    if keyset is None:
        return None
    issued_at = parse_rfc3339(keyset[0]) if len(keyset) == 2 and isinstance(keyset[0], str) else None
    try:
        token_id = uuid.UUID(keyset[1]) if issued_at is not None else None
    except (ValueError, TypeError):
        token_id = None
    if issued_at is None or token_id is None:
        raise ProblemError(400, "invalid_cursor", "cursor is malformed or was not issued by this server")
    return issued_at, token_id


async def revoke(runtime: Runtime, principal: OperatorPrincipal, project_id: uuid.UUID,
                 token_id: uuid.UUID) -> None:
    await authz.require(runtime.pool, principal.subject, ADMIN, _project_ref(project_id))
    if await tokens_db.revoke(runtime.pool, project_id, token_id):
        return
    row = await tokens_db.get(runtime.pool, project_id, token_id)
    if row is None:
        if await tokens_db.project_domain(runtime.pool, project_id) is None:
            raise _project_not_found()
        raise _token_not_found()
    conflict = rules.revoke_conflict(row["consumed_at"], row["revoked_at"])
    if conflict is None:  # cannot happen: the conditional update only skips terminal tokens
        raise ProblemError(409, "token_state_changed", "the bootstrap token changed state; retry")
    raise conflict
