"""Identity reads per Domain. The external subject is shown only as a keyed pseudonym, except to
callers holding `domain-audit` on the Domain (the contract's auditors)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from plexsphere.crypto import Keyring
from plexsphere.db import identities as db
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import parse_uuid
from plexsphere.services import authz
from plexsphere.timeutil import parse_rfc3339, rfc3339

KINDS = ("user", "service-identity")


def pseudonym(keyring: Keyring, external_subject: str) -> str:
    return keyring.digest("identity-pseudonym", external_subject).hex()


def parse_kind(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in KINDS:
        raise ProblemError(400, "invalid_kind", "kind must be user or service-identity")
    return value


def parse_principal_id(text: str) -> uuid.UUID:
    principal_id = parse_uuid(text)
    if principal_id is None:
        raise ProblemError(400, "invalid_principal_id", "principal id must be a non-nil UUID")
    return principal_id


def summary(keyring: Keyring, row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "domain_id": str(row["domain_id"]),
        "display_name": row["display_name"],
        "external_subject_pseudonym": pseudonym(keyring, row["external_subject"]),
        "last_sign_in_at": rfc3339(row["last_sign_in_at"]),
        "created_at": rfc3339(row["created_at"]),
    }


async def list_page(pool: asyncpg.Pool, keyring: Keyring, subject: str, domain_id: uuid.UUID, kind: str | None,
                    after: list[Any] | None, limit: int) -> tuple[list[dict[str, Any]], list[str] | None]:
    await authz.require(pool, subject, "domain-view", f"domain:{domain_id}")
    before: tuple[datetime, uuid.UUID] | None = None
    if after is not None:
        at = parse_rfc3339(after[0]) if len(after) == 2 and isinstance(after[0], str) else None
        last_id = parse_uuid(after[1]) if at and isinstance(after[1], str) else None
        if at is None or last_id is None:
            raise ProblemError(400, "invalid_cursor", "cursor is malformed")
        before = (at, last_id)
    elif not await db.domain_exists(pool, domain_id):
        raise not_found("domain_not_found", "Domain")
    rows = await db.list_page(pool, domain_id, kind, before, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = [rfc3339(rows[-1]["created_at"]), str(rows[-1]["id"])] if more else None
    return [summary(keyring, r) for r in rows], next_after


async def get(pool: asyncpg.Pool, keyring: Keyring, subject: str, domain_id: uuid.UUID, identity_id: uuid.UUID
              ) -> dict[str, Any]:
    await authz.require(pool, subject, "domain-view", f"domain:{domain_id}")
    row = await db.get(pool, domain_id, identity_id)
    if row is None:
        # Also for a principal of another Domain: this Domain has no such identity.
        raise not_found("identity_not_found", "Identity")
    detail = summary(keyring, row)
    detail["updated_at"] = rfc3339(row["updated_at"])
    if (await authz.check(pool, subject, "domain-audit", f"domain:{domain_id}")).allowed:
        detail["external_subject"] = row["external_subject"]
        if row["email"]:
            detail["email"] = row["email"]
    return detail
