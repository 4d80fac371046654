"""Worker hook: the periodic sweeps of the mesh — reachability (healthy → stale → unreachable) and
endpoint freshness. Set-based statements, safe to run in several workers at once."""

from __future__ import annotations

import asyncio
import logging

from plexsphere.server.runtime import Runtime
from plexsphere.services import peers, reachability

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 2.0
_TASK = "mesh_sweeper"


async def sweep_once(runtime: Runtime) -> tuple[int, int]:
    async with runtime.pool.acquire() as conn:
        degraded = await reachability.sweep(conn)
        async with conn.transaction():
            expired = await peers.expire_endpoints(conn, runtime.signing)
    return degraded, expired


async def _run(runtime: Runtime) -> None:
    while True:
        try:
            await sweep_once(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mesh sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


async def start(runtime: Runtime) -> None:
    runtime.extras[_TASK] = asyncio.create_task(_run(runtime), name=_TASK)


async def stop(runtime: Runtime) -> None:
    task = runtime.extras.pop(_TASK, None)
    if task is not None:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
