"""Appending to the durable per-Domain event log (DECISIONS 5).

An event is signed once, stored once (one row, whatever the number of recipients) and announced
with pg_notify, which PostgreSQL delivers at commit, so streams never see uncommitted events.
Call `append` inside the transaction that makes the change the event describes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

from plexsphere.ids import uuid7
from plexsphere.server.notify import EVENTS_CHANNEL
from plexsphere.services.signing import SigningKeys, sign_envelope
from plexsphere.timeutil import rfc3339, utcnow


async def append(
    conn: asyncpg.Connection,
    signing: SigningKeys,
    domain_id: uuid.UUID,
    event_type: str,
    payload: dict[str, Any],
    *,
    target_node_id: uuid.UUID | None = None,
    exclude_node_id: uuid.UUID | None = None,
) -> int:
    """Signs and stores one event; returns its sequence number (the SSE id)."""
    key = await signing.active(conn, domain_id)
    envelope: dict[str, Any] = {
        "id": str(uuid7()),
        "type": event_type,
        "scope": f"domain:{domain_id}",
        "key_id": key.key_id,
        "issued_at": rfc3339(utcnow()),
        "payload": payload,
    }
    envelope["signature"] = sign_envelope(key, envelope)
    seq = await conn.fetchval(
        """INSERT INTO events (domain_id, event_id, type, target_node_id, exclude_node_id, envelope)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq""",
        domain_id, uuid.UUID(envelope["id"]), event_type, target_node_id, exclude_node_id,
        orjson.dumps(envelope).decode(),
    )
    await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, f"{domain_id}:{seq}")
    return seq
