"""One LISTEN connection per process, fanning PostgreSQL notifications out to in-process callbacks.
This is how a change committed through one `serve` process reaches streams and workers in another."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

import asyncpg

from plexsphere.db.pool import connect

log = logging.getLogger(__name__)

Callback = Callable[[str], None]

OUTBOX_CHANNEL = "plexsphere_outbox"
EVENTS_CHANNEL = "plexsphere_events"


class Notifier:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._reconnected: list[Callable[[], None]] = []

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._callbacks[channel].append(callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Called after the LISTEN connection was lost and re-established: notifications in between
        are gone, so subscribers must re-read what they track."""
        self._reconnected.append(callback)

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="notifier-watch")

    async def _connect(self) -> None:
        self._conn = await connect(self._url)
        for channel in self._callbacks:
            await self._conn.add_listener(channel, self._dispatch)

    def _dispatch(self, _conn, _pid, channel: str, payload: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            try:
                callback(payload)
            except Exception:  # one bad subscriber must not starve the others
                log.exception("notification callback failed on %s", channel)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(5)
            conn = self._conn
            if conn is not None and not conn.is_closed():
                try:
                    await conn.execute("SELECT 1")
                    continue
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                    pass
            log.warning("LISTEN connection lost; reconnecting")
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError):
                log.exception("LISTEN reconnect failed; retrying")
                continue
            for callback in self._reconnected:
                callback()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
