"""Use cases on the mesh address pool that other areas call."""

from __future__ import annotations

import uuid

import asyncpg

from plexsphere.db import addressing as addressing_db


async def release_address(conn: asyncpg.Connection, domain_id: uuid.UUID, host_offset: int) -> bool:
    """Gives a deleted Node's address back to its Domain's pool, in the caller's transaction (call
    it after deleting the Node row, in the same transaction). The allocator hands out the lowest
    free address first, so a released address is the next one reused. Returns False when the
    offset was already free, was never handed out, or is still held by a Node."""
    return await addressing_db.release(conn, domain_id, host_offset)
