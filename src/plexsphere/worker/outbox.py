"""The outbox worker: claims rows with FOR UPDATE SKIP LOCKED (several workers, in several
processes, are safe), runs the topic's handler in the same transaction as the delete, and backs off
failed rows. Handlers must be idempotent: a crash after the handler's writes but before commit
rolls both back, and the row is claimed again.

Handlers register with `@handler("topic")` (one payload) or `@batch_handler("topic")` (every
claimed row of the topic at once, for handlers that write N rows in a constant number of
statements) in the module of their area and are imported by `load_handlers()`."""

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
BatchHandler = Callable[[asyncpg.Connection, Runtime, list[dict[str, Any]]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
BATCH_HANDLERS: dict[str, BatchHandler] = {}
# Topics whose handlers are idempotent and depend on no other row's effects, so they may run after
# the rest of a batch; taking them out of line keeps same-topic runs (and batch handlers) long.
COMMUTING: set[str] = set()

# Modules that define handlers (imported for their @handler side effect).
HANDLER_MODULES = (
    "plexsphere.worker.mirror",
    "plexsphere.worker.anchoring",
)

BATCH = 500
MAX_BACKOFF_S = 60


def handler(topic: str, *, commutes: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[topic] = fn
        if commutes:
            COMMUTING.add(topic)
        return fn

    return register


def batch_handler(topic: str) -> Callable[[BatchHandler], BatchHandler]:
    def register(fn: BatchHandler) -> BatchHandler:
        BATCH_HANDLERS[topic] = fn
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
    """Claims up to BATCH rows and handles them in id order, a run of consecutive rows of one
    batch-handled topic in one call. Each call runs in a savepoint of the claiming transaction; a
    failing batch is retried row by row, so a failing row backs off alone while the rest commits
    together. Returns the number of rows claimed."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT id, topic, payload, attempts FROM outbox
                WHERE available_at <= now()
                ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            BATCH,
        )
        done: list[int] = []
        for run in _runs(rows):
            topic = run[0]["topic"]
            if topic in BATCH_HANDLERS and len(run) > 1:
                try:
                    async with conn.transaction():
                        await BATCH_HANDLERS[topic](conn, runtime, [r["payload"] for r in run])
                    done += [r["id"] for r in run]
                    continue
                except Exception:
                    log.warning("outbox batch of %d %s rows failed; retrying row by row", len(run), topic,
                                exc_info=True)
            for row in run:
                if await _handle_one(conn, runtime, row):
                    done.append(row["id"])
        if done:
            # Last before commit: the batch's event-log locks (taken by its final statement) are
            # held for this one statement and the commit, not for the whole batch.
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", done)
    return len(rows)


def _runs(rows: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Consecutive rows of the same topic, in id order (so cross-topic order is kept), commuting
    topics last: register writes `node.registered` and `resource.created` alternately, which would
    otherwise cut anchoring into runs of one."""
    ordered = [r for r in rows if r["topic"] not in COMMUTING]
    ordered += sorted((r for r in rows if r["topic"] in COMMUTING), key=lambda r: r["topic"])  # stable
    runs: list[list[asyncpg.Record]] = []
    for row in ordered:
        if runs and runs[-1][0]["topic"] == row["topic"]:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


async def _handle_one(conn: asyncpg.Connection, runtime: Runtime, row: asyncpg.Record) -> bool:
    """Runs one row's handler in a savepoint; True when done (or dropped), False when backed off."""
    topic = row["topic"]
    single = HANDLERS.get(topic)
    batch = BATCH_HANDLERS.get(topic)
    if single is None and batch is None:
        log.warning("no handler for outbox topic %s; dropping row %s", topic, row["id"])
        return True
    try:
        async with conn.transaction():
            if single is not None:
                await single(conn, runtime, row["payload"])
            else:
                await batch(conn, runtime, [row["payload"]])
        return True
    except Exception as exc:
        log.exception("outbox handler %s failed for row %s", topic, row["id"])
        await conn.execute(
            """UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                      available_at = now() + least(power(2, attempts), $3) * interval '1 second'
                WHERE id = $1""",
            row["id"], repr(exc)[:1000], MAX_BACKOFF_S,
        )
        return False


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
