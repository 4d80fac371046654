"""Appending to the durable per-Domain event log (DECISIONS 5).

An event is signed once, stored once (one row, whatever the number of recipients) and announced
with pg_notify, which PostgreSQL delivers at commit, so streams never see uncommitted events.
Call `append` inside the transaction that makes the change the event describes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
    return await conn.fetchval(
        _APPEND_SQL, domain_id, uuid.UUID(envelope["id"]), event_type, target_node_id, exclude_node_id,
        orjson.dumps(envelope).decode(), EVENTS_CHANNEL,
    )


# One round trip: lock, insert, notify. The per-Domain transaction lock is taken before the row
# draws its sequence number and is held until commit, so within a Domain sequence order is commit
# order: a reader that has seen seq S can never later find a committed event of that Domain below S,
# which is what makes "seq > last seen" (hub fetches, Last-Event-ID replay) lossless. Appenders of
# different Domains never wait for each other.
_APPEND_SQL = """
WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended('plexsphere-events:' || $1::uuid::text, 0)))
, inserted AS (
    INSERT INTO events (domain_id, event_id, type, target_node_id, exclude_node_id, envelope)
    SELECT $1::uuid, $2::uuid, $3::text, $4::uuid, $5::uuid, $6::text FROM locked
    RETURNING seq
)
SELECT seq FROM inserted, LATERAL (SELECT pg_notify($7::text, $1::uuid::text || ':' || seq)) AS announced
"""


async def append_many(conn: asyncpg.Connection, signing: SigningKeys, items: list[PendingEvent]) -> list[int]:
    """Signs every event in Python and stores them all with ONE statement (constant round trips for
    a batch of any size); returns their sequence numbers in the order given. The per-Domain locks
    are taken by that statement, so call it last, just before commit, to keep the lock held briefly."""
    if not items:
        return []
    domain_ids, event_ids, types, targets, excludes, envelopes = [], [], [], [], [], []
    for item in items:
        key = await signing.active(conn, item.domain_id)  # cached after the Domain's first event
        envelope: dict[str, Any] = {
            "id": str(uuid7()),
            "type": item.event_type,
            "scope": f"domain:{item.domain_id}",
            "key_id": key.key_id,
            "issued_at": rfc3339(utcnow()),
            "payload": item.payload,
        }
        envelope["signature"] = sign_envelope(key, envelope)
        domain_ids.append(item.domain_id)
        event_ids.append(uuid.UUID(envelope["id"]))
        types.append(item.event_type)
        targets.append(item.target_node_id)
        excludes.append(item.exclude_node_id)
        envelopes.append(orjson.dumps(envelope).decode())
    rows = await conn.fetch(
        _APPEND_MANY_SQL, domain_ids, event_ids, types, targets, excludes, envelopes, EVENTS_CHANNEL
    )
    by_event = {r["event_id"]: r["seq"] for r in rows}
    return [by_event[e] for e in event_ids]


@dataclass(frozen=True)
class PendingEvent:
    domain_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    target_node_id: uuid.UUID | None = None
    exclude_node_id: uuid.UUID | None = None


# The batch form of _APPEND_SQL: every Domain's lock first (in id order, so two batches never
# deadlock), then the rows in the given order (seq follows it), then ONE notification per Domain
# carrying its highest seq — the hub reads everything above what it has seen anyway.
_APPEND_MANY_SQL = """
WITH locked AS (
    SELECT count(pg_advisory_xact_lock(hashtextextended('plexsphere-events:' || d::text, 0))) AS n
      FROM (SELECT DISTINCT d FROM unnest($1::uuid[]) AS d ORDER BY d) AS domains
)
, inserted AS (
    INSERT INTO events (domain_id, event_id, type, target_node_id, exclude_node_id, envelope)
    SELECT e.domain_id, e.event_id, e.type, e.target_node_id, e.exclude_node_id, e.envelope
      FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[])
           WITH ORDINALITY AS e(domain_id, event_id, type, target_node_id, exclude_node_id, envelope, ord),
           locked
     ORDER BY e.ord
    RETURNING domain_id, event_id, seq
)
, announced AS (
    SELECT pg_notify($7::text, domain_id::text || ':' || max(seq)) FROM inserted GROUP BY domain_id
)
SELECT event_id, seq FROM inserted, (SELECT count(*) FROM announced) AS a
"""


# -- reading the log (the SSE hub and Last-Event-ID replay) ----------------------------------------
READ_BATCH = 500


async def latest_seq(conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> int:
    return await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events WHERE domain_id = $1", domain_id)


async def read_after(
    conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID, after: int, limit: int = READ_BATCH
) -> list[asyncpg.Record]:
    """The Domain's next events after `after`, in order (all recipients: the hub filters)."""
    return await conn.fetch(
        """SELECT seq, type, target_node_id, exclude_node_id, envelope FROM events
            WHERE domain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
        domain_id, after, limit,
    )


async def replay_for_node(
    conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID, node_id: uuid.UUID, after: int, upto: int,
    limit: int = READ_BATCH,
) -> list[asyncpg.Record]:
    """Events in (after, upto] that concern `node_id`, in order; page with the last seq returned."""
    return await conn.fetch(
        """SELECT seq, type, target_node_id, exclude_node_id, envelope FROM events
            WHERE domain_id = $1 AND seq > $2 AND seq <= $3
              AND (target_node_id IS NULL OR target_node_id = $4)
              AND exclude_node_id IS DISTINCT FROM $4
            ORDER BY seq LIMIT $5""",
        domain_id, after, upto, node_id, limit,
    )
