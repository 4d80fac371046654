"""Appending to the transactional outbox. The worker (worker/outbox.py) runs the handler
registered for the topic after commit; pg_notify wakes it at commit time, so a handler typically
starts within milliseconds of the write."""

from __future__ import annotations

from typing import Any

import asyncpg

from plexsphere.server.notify import OUTBOX_CHANNEL


async def enqueue(conn: asyncpg.Connection, topic: str, payload: dict[str, Any]) -> int:
    outbox_id = await conn.fetchval(
        "INSERT INTO outbox (topic, payload) VALUES ($1, $2::jsonb) RETURNING id", topic, payload
    )
    await conn.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, topic)
    return outbox_id
