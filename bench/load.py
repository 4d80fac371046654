"""Closed-loop load: `clients` workers, each sending its next request as soon as the previous one
answered, bounded by a count and a duration (whichever comes first)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def closed_loop(clients: int, make_worker: Callable[[int], Any], step: Callable[[Any, int], Awaitable[str | None]],
                      *, count: int, duration: float) -> LoadResult:
    """`make_worker(i)` builds per-client state (e.g. a connection); `step(state, n)` performs request
    number n and returns None on success or an error label. Stops after `count` requests or
    `duration` seconds."""
    result = LoadResult(clients)
    counter = iter(range(count))
    states = [make_worker(i) for i in range(clients)]
    states = [await s if asyncio.iscoroutine(s) else s for s in states]
    deadline = time.perf_counter() + duration

    async def run(state: Any) -> None:
        for n in counter:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            error = await step(state, n)
            if error is None:
                result.latencies.append(time.perf_counter() - t0)
            else:
                result.errors[error] = result.errors.get(error, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(s) for s in states))
    result.elapsed = time.perf_counter() - t0
    for state in states:
        close = getattr(state, "close", None)
        if close is not None:
            maybe = close()
            if asyncio.iscoroutine(maybe):
                await maybe
    return result
