"""A connection wrapper that counts the statements sent: how the O(N) and bounded-query tests
prove their cost claims without a server-side extension."""

from __future__ import annotations

COUNTED_METHODS = frozenset({"execute", "executemany", "fetch", "fetchrow", "fetchval"})


class CountingConnection:
    """Delegates to an asyncpg connection; `statements` counts every statement sent through it."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self.statements = 0

    def __getattr__(self, name):
        attr = getattr(self._conn, name)
        if name in COUNTED_METHODS:
            async def counted(*args, **kwargs):
                self.statements += 1
                return await attr(*args, **kwargs)
            return counted
        return attr
