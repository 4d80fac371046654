"""Runs `plexsphere serve` with every SQL statement the server sends counted.

The bench reads the count from a shared 8-byte file (PLEXSPHERE_BENCH_QCOUNT_FILE) via mmap, so
"queries per event" needs neither pg_stat_statements (not preloaded on every PostgreSQL) nor a
route in the product. Usage (what harness.ServerProcess runs):

    python -m bench.qcount serve --role all
"""

from __future__ import annotations

import mmap
import os
import struct
import sys


def install(path: str) -> None:
    import asyncpg.connection

    fd = os.open(path, os.O_RDWR)
    shared = mmap.mmap(fd, 8)
    counter = [0]

    def bump() -> None:
        counter[0] += 1
        shared[:8] = struct.pack("<Q", counter[0])

    connection = asyncpg.connection.Connection
    original_execute = connection._execute
    original_executemany = connection._executemany
    original_simple = connection.execute

    # Connection.execute without arguments uses the simple-query protocol (not _execute); pool
    # methods and transactions (BEGIN/COMMIT) delegate to these, so every round trip passes
    # through exactly one of them.
    async def _execute(self, *args, **kwargs):
        bump()
        return await original_execute(self, *args, **kwargs)

    async def _executemany(self, *args, **kwargs):
        bump()
        return await original_executemany(self, *args, **kwargs)

    async def execute(self, query, *args, **kwargs):
        if not args:
            bump()
        return await original_simple(self, query, *args, **kwargs)

    connection._execute = _execute
    connection._executemany = _executemany
    connection.execute = execute


def main() -> None:
    path = os.environ.get("PLEXSPHERE_BENCH_QCOUNT_FILE")
    if path:
        install(path)
    from plexsphere.cli.server_main import main as server_main

    sys.argv = ["plexsphere", *sys.argv[1:]]
    server_main()


if __name__ == "__main__":
    main()
