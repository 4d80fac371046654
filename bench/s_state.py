"""Scenario 5 — state pull: GET /v1/nodes/{id}/state (NSK bearer) in a Domain of 10,000 anchored
Nodes, each answer carrying the other 9,999 peers. The raw limit: the same peer rows read by one
asyncpg query in this process, no HTTP, no JSON.

Goal: p99 < 100 ms."""

from __future__ import annotations

import random

from bench.harness import (
    Postgres,
    Table,
    emit,
    finish_profile,
    make_stack,
    median,
    ms,
    percentile,
    prefill,
    start_profile,
)
from bench.load import closed_loop
from bench.rawhttp import Connection

NODES = 10_000
LEVELS = [(1, 200, 8.0), (4, 400, 8.0)]

RAW_SQL = """
SELECT p.node_id, n.mesh_ip, n.public_key, p.endpoint
  FROM peers p JOIN nodes n ON n.id = p.node_id
 WHERE p.domain_id = $1 AND p.node_id <> $2
 ORDER BY p.node_id
"""


async def measure(stack, nodes, levels, label: str = "state") -> list[tuple[int, object, int, float, float]]:
    """Per level: (clients, LoadResult, body bytes, SQL statements per request, server CPU ms per request)."""
    host, port = stack.url.split("//", 1)[1].split(":")
    rng = random.Random(7)
    server = stack.server
    out = []
    for clients, count, duration in levels:
        sizes: list[int] = []

        async def step(conn: Connection, n: int, sizes: list[int] = sizes) -> str | None:
            node = rng.choice(nodes)
            resp = await conn.request("GET", f"/v1/nodes/{node.id}/state",
                                      headers={"Authorization": f"Bearer {node.bearer()}"}, keep_body=False)
            sizes.append(len(resp.body))
            return None if resp.status == 200 else f"HTTP {resp.status}"

        q0, cpu0 = server.queries(), server.stats.cpu_seconds()
        spy = start_profile(server.proc.pid, f"{label}-{clients}", duration)
        result = await closed_loop(clients, lambda i: Connection(host, int(port)), step, count=count,
                                   duration=duration)
        finish_profile(spy, f"{label}-{clients}")
        n = max(len(result.latencies), 1)
        out.append((clients, result, median(sizes) if sizes else 0, (server.queries() - q0) / n,
                    (server.stats.cpu_seconds() - cpu0) / n * 1000))
    return out


async def raw_rows(stack, nodes, samples: int = 50) -> list[float]:
    import time

    conn = await stack.connect()
    try:
        times = []
        for node in random.Random(3).sample(nodes, samples):
            t0 = time.perf_counter()
            await conn.fetch(RAW_SQL, stack.domain_id, node.id)
            times.append(time.perf_counter() - t0)
        return times
    finally:
        await conn.close()


async def run(pg: Postgres) -> None:
    stack = await make_stack(pg)
    try:
        nodes = await prefill(stack, NODES)
        raw = await raw_rows(stack, nodes)
        table = Table(f"state pull — GET /v1/nodes/{{id}}/state, {NODES:,} anchored Nodes in the Domain",
                      ["clients", "path", "requests", "req/s", "median ms", "p99 ms", "body bytes", "SQL/req",
                       "server CPU ms/req", "p99 / raw p99"])
        table.add(1, "raw asyncpg read of the same rows", len(raw), "", ms(median(raw)), ms(percentile(raw, 99)),
                  "", 1, "", "")
        for clients, result, size, queries, cpu in await measure(stack, nodes, LEVELS):
            table.add(clients, "HTTP API (NSK bearer)", len(result.latencies), f"{result.rate:.0f}",
                      ms(median(result.latencies)), ms(percentile(result.latencies, 99)), f"{size:,}",
                      f"{queries:.1f}", f"{cpu:.1f}",
                      f"{percentile(result.latencies, 99) / percentile(raw, 99):.1f}×")
            if result.errors:
                table.notes.append(f"{clients} clients: errors {result.errors}")
        table.notes.append("goal: p99 < 100 ms (the 1-client row is the latency a single agent sees)")
        emit(table)
    finally:
        stack.close()
