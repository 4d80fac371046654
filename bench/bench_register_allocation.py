"""Registration cost against Domain size: POST /v1/register (one client, sequential) and the
registration statement alone (`register_node`, asyncpg, no HTTP), into a Domain that already holds
100 and then 10,000 Nodes, plus a fragmented pool (1,000 released addresses scattered through the
10,000). The allocator is O(log n) — lowest released offset by index, else the high-water mark —
so the medians should not move with the fleet size.

    python -m bench.bench_register_allocation [--samples N]

The existing Nodes are written with COPY (not anchored, so the response's peer snapshot stays
empty and only the allocation path is compared); a last row shows the same 10,000 anchored, where
the O(n) peer snapshot the contract requires is part of every response.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import secrets
import time

import httpx

from bench.harness import Postgres, Stack, Table, emit, make_stack, median, ms, percentile, prefill
from bench.s_register import mint_tokens, public_keys


async def _http_samples(stack: Stack, samples: int, prefix: str) -> list[float]:
    tokens = await mint_tokens(stack, samples)
    keys = public_keys(samples)
    timings = []
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        for i in range(samples):
            body = {"project_id": str(stack.project_id), "resource_id": f"{prefix}-{i}",
                    "requested_resource_id": f"{prefix}-{i}", "bootstrap_token": tokens[i],
                    "nonce": secrets.token_hex(16), "public_key": keys[i]}
            t0 = time.perf_counter()
            resp = await http.post("/v1/register", json=body)
            timings.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise RuntimeError(f"register failed: {resp.status_code} {resp.text}")
    return timings


async def _sql_samples(stack: Stack, samples: int, prefix: str) -> list[float]:
    from plexsphere import crypto
    from plexsphere.db import register as register_db
    from plexsphere.domain import bootstrap_tokens as bt
    from plexsphere.ids import uuid7
    from plexsphere.services.register import nsk_aad

    tokens = await mint_tokens(stack, samples)
    keys = public_keys(samples)
    conn = await stack.connect()
    timings = []
    try:
        for i in range(samples):
            node_id = uuid7()
            nsk = crypto.random_bytes(32)
            args = dict(token_digest=stack.keyring.digest(bt.DIGEST_PURPOSE, tokens[i]), project_id=stack.project_id,
                        handle=f"{prefix}-{i}", name=f"{prefix}-{i}", adopt=True, nonce=secrets.token_hex(16),
                        public_key=base64.b64decode(keys[i]), node_id=node_id,
                        nsk_wrapped=stack.keyring.wrap(nsk, nsk_aad(node_id)),
                        nsk_digest=stack.keyring.digest("nsk", nsk), new_resource_id=uuid7())
            t0 = time.perf_counter()
            await register_db.register_node(conn, **args)
            timings.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    return timings


async def _release_scattered(stack: Stack, count: int) -> None:
    """Deletes `count` random prefilled Nodes and returns their addresses the way node deletion does."""
    from plexsphere.services.addressing import release_address

    conn = await stack.connect()
    try:
        offsets = await conn.fetch("SELECT id, host_offset FROM nodes WHERE domain_id = $1", stack.domain_id)
        for row in random.Random(7).sample(list(offsets), count):
            async with conn.transaction():
                await conn.execute("DELETE FROM nodes WHERE id = $1", row["id"])
                await release_address(conn, stack.domain_id, row["host_offset"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _measure(pg: Postgres, existing: int, samples: int, *, anchored: bool = False,
                   released: int = 0) -> tuple[list[float], list[float]]:
    stack = await make_stack(pg, server_env={"PLEXSPHERE_REGISTER_RATE_PER_MINUTE": "0"})
    try:
        await prefill(stack, existing, anchored=anchored)
        if released:
            await _release_scattered(stack, released)
        await _http_samples(stack, 20, "warm")  # connection pool, statement cache, signing-key cache
        http = await _http_samples(stack, samples, "http")
        sql = await _sql_samples(stack, samples, "sql")
        return http, sql
    finally:
        stack.close()


async def run(pg: Postgres, samples: int = 300) -> Table:
    table = Table(
        f"Registration cost vs Domain size ({samples} sequential registrations per row)",
        ["existing nodes", "pool", "HTTP median", "HTTP p99", "statement median", "statement p99"],
    )
    cases = [
        (100, "high-water mark", {}),
        (10_000, "high-water mark", {}),
        (10_000, "1,000 released (reuse)", {"released": 1_000}),
        (10_000, "anchored: 10,000-peer snapshot", {"anchored": True}),
    ]
    for existing, pool, kw in cases:
        http, sql = await _measure(pg, existing, samples, **kw)
        table.add(f"{existing:,}", pool, ms(median(http)), ms(percentile(http, 99)), ms(median(sql)),
                  ms(percentile(sql, 99)))
    return emit(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_register_allocation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    pg = Postgres()
    try:
        asyncio.run(run(pg, args.samples))
    finally:
        pg.close()


if __name__ == "__main__":
    main()
