"""Per-source rate limiting for unauthenticated seams (`POST /v1/register`).

An in-process token bucket per client address: `rate_per_minute` refill, `burst` capacity. The
limit is per server process (N processes admit up to N× the rate) — chosen over a PostgreSQL
counter because it costs nothing on the registration path and pins no client to a process; the
buckets are not a source of truth, only a brake (docs/decisions/enrolment.md). A rate of 0 turns
the limit off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from plexsphere.domain.errors import ProblemError
from plexsphere.server.auth import runtime_of

# Past this many tracked sources, idle (full) buckets are dropped so memory stays bounded.
MAX_TRACKED_SOURCES = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, rate_per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_second = max(rate_per_minute, 0) / 60.0
        self.burst = max(burst, 1)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate_per_second > 0

    def acquire(self, source: str) -> float | None:
        """Takes one token for `source`: None when admitted, else the seconds until one is due."""
        if not self.enabled:
            return None
        now = self._clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_SOURCES:
                self._prune(now)
            bucket = self._buckets[source] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate_per_second)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate_per_second

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate_per_second
        for source in [s for s, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[source]


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def register_limiter(request: Request) -> TokenBucketLimiter:
    runtime = runtime_of(request)
    limiter = runtime.extras.get("register_rate_limiter")
    if limiter is None:
        settings = runtime.settings
        limiter = TokenBucketLimiter(settings.register_rate_per_minute, settings.register_burst)
        runtime.extras["register_rate_limiter"] = limiter
    return limiter


async def limit_register(request: Request) -> None:
    """Route dependency: 429 `rate_limited` with Retry-After once a source outruns its bucket."""
    retry_after = register_limiter(request).acquire(client_source(request))
    if retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        raise ProblemError(
            429, "rate_limited", f"too many registrations from this source; retry in {seconds}s",
            headers={"Retry-After": str(seconds)},
        )
