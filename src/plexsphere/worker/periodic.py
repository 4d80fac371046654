"""A sweep run every few seconds by every worker process (sweeps are set-based and safe to run
concurrently), exposing the start/stop hooks server/app.py expects of a worker module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from plexsphere.server.runtime import Runtime

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval_s: float, sweep: Callable[[Runtime], Awaitable[Any]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self.sweep = sweep

    async def _run(self, runtime: Runtime) -> None:
        while True:
            try:
                await self.sweep(runtime)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed sweep is retried next interval; the loop must survive
                log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval_s)

    async def start(self, runtime: Runtime) -> None:
        runtime.extras[self.name] = asyncio.create_task(self._run(runtime), name=self.name)

    async def stop(self, runtime: Runtime) -> None:
        task = runtime.extras.pop(self.name, None)
        if task is None:
            return
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
