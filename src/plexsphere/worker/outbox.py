"""The outbox worker: claims rows with FOR UPDATE SKIP LOCKED (several workers, in several
processes, are safe), runs the topic's handler in the same transaction as the delete, and backs off
failed rows. Handlers must be idempotent: a crash after the handler's writes but before commit
rolls both back, and the row is claimed again.

Handlers register with `@handler("topic")` in the module of their area and are imported by
`load_handlers()`."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from plexsphere.server.notify import OUTBOX_CHANNEL
from plexsphere.server.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Runtime, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}

# Modules that define handlers (imported for their @handler side effect).
HANDLER_MODULES = (
    "plexsphere.worker.mirror",
    "plexsphere.worker.anchoring",
)

BATCH = 100
MAX_BACKOFF_S = 60


def handler(topic: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        return fn

    return register


def load_handlers() -> None:
    for name in HANDLER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


async def drain_once(runtime: Runtime) -> int:
    """Claims one batch and runs each row's handler in a savepoint of the claiming transaction, so
    a failing row backs off alone while the rest of the batch commits together. Returns the number
    of rows claimed."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT id, topic, payload, attempts FROM outbox
                WHERE available_at <= now()
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            BATCH,
        )
        done: list[int] = []
        for row in rows:
            fn = HANDLERS.get(row["topic"])
            if fn is None:
                log.warning("no handler for outbox topic %s; dropping row %s", row["topic"], row["id"])
                done.append(row["id"])
                continue
            try:
                async with conn.transaction():
                    await fn(conn, runtime, row["payload"])
                done.append(row["id"])
            except Exception as exc:
                log.exception("outbox handler %s failed for row %s", row["topic"], row["id"])
                await conn.execute(
                    """UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                              available_at = now() + least(power(2, attempts), $3) * interval '1 second'
                        WHERE id = $1""",
                    row["id"], repr(exc)[:1000], MAX_BACKOFF_S,
                )
        if done:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", done)
    return len(rows)


class OutboxWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        load_handlers()
        self.runtime.notifier.subscribe(OUTBOX_CHANNEL, lambda _payload: self._wake.set())
        self.runtime.notifier.on_reconnect(self._wake.set)
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def _run(self) -> None:
        while True:
            try:
                self._wake.clear()
                while await drain_once(self.runtime) == BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed")
            try:
                # Woken by NOTIFY; the timeout picks up backed-off rows and missed notifications.
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
