"""Scenario 3 — churn: 100 joins per second for 30 s (open loop, at most 64 registrations in
flight) into a Domain of 5,000 anchored Nodes whose agents all hold real SSE streams. Prints the
backlog curve once a second: registrations answered, joins not yet anchored (outbox rows),
`peer_added` events the slowest agent has not yet received, server CPU and RSS. Then waits (60 s at
most) until every agent has received every join. Every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import os
import time

from bench.fleet import Fleet
from bench.harness import Postgres, Table, emit, make_stack, prefill
from bench.rawhttp import Connection
from bench.s_register import mint_tokens, public_keys

AGENTS = int(os.environ.get("BENCH_CHURN_AGENTS", "5000"))
RATE = 100
DURATION = 30
IN_FLIGHT = 64
DRAIN_LIMIT_S = 60
MARKER = b"event: peer_added"


async def run(pg: Postgres) -> None:
    import uuid

    stack = await make_stack(pg)
    fleet = None
    try:
        server = stack.server
        nodes = await prefill(stack, AGENTS)
        fleet = Fleet(stack, nodes)
        await fleet.connect()
        total = RATE * DURATION
        tokens, keys = await mint_tokens(stack, total), public_keys(total)
        host, port = stack.url.split("//", 1)[1].split(":")
        free = [Connection(host, int(port)) for _ in range(IN_FLIGHT)]
        gate = asyncio.Semaphore(IN_FLIGHT)
        answered = failed = late = 0
        fleet.swarm.arm(MARKER, target=total)
        db = await stack.connect()

        async def join(i: int) -> None:
            nonlocal answered, failed
            async with gate:
                conn = free.pop()
                try:
                    handle = f"churn-{uuid.uuid4().hex[:12]}"
                    resp = await conn.request("POST", "/v1/register", keep_body=False, json={
                        "project_id": str(stack.project_id), "resource_id": handle,
                        "requested_resource_id": handle, "bootstrap_token": tokens[i], "nonce": uuid.uuid4().hex,
                        "public_key": keys[i]})
                    if resp.status == 200:
                        answered += 1
                    else:
                        failed += 1
                finally:
                    free.append(conn)

        curve = Table(f"churn — {RATE} joins/s for {DURATION} s into {AGENTS:,} connected agents (backlog curve)",
                      ["t s", "joins sent", "answered", "not yet anchored", "slowest agent behind by",
                       "median agent behind by", "server CPU %", "server RSS MiB"])

        async def sample(t: float, sent: int, last: list[float]) -> None:
            pending = await db.fetchval("SELECT count(*) FROM outbox WHERE topic = 'node.registered'")
            emitted = await db.fetchval("SELECT count(*) FROM events WHERE type = 'peer_added'")
            counts = sorted(c.count for c in fleet.swarm.conns)
            cpu = server.stats.cpu_seconds()
            curve.add(f"{t:.0f}", sent, answered, pending, emitted - counts[0], emitted - counts[len(counts) // 2],
                      f"{(cpu - last[1]) / (t - last[0]) * 100:.0f}" if t > last[0] else "",
                      f"{server.stats.rss_kib() / 1024:.0f}")
            last[:] = [t, cpu]

        t0 = time.perf_counter()
        last = [0.0, server.stats.cpu_seconds()]
        tasks = []
        next_sample = 1.0
        for i in range(total):
            due = t0 + i / RATE
            while True:
                now = time.perf_counter()
                if now - t0 >= next_sample:
                    await sample(now - t0, i, last)
                    next_sample += 1.0
                if now >= due:
                    break
                await asyncio.sleep(min(due - now, 0.01))
            if gate.locked():
                late += 1
            tasks.append(asyncio.create_task(join(i)))
        sent_done = time.perf_counter() - t0
        # Drain: until every agent has received every join (bounded).
        while time.perf_counter() - t0 < DURATION + DRAIN_LIMIT_S:
            now = time.perf_counter()
            if now - t0 >= next_sample:
                await sample(now - t0, total, last)
                next_sample += 1.0
            if all(t.done() for t in tasks) and fleet.swarm.done_count >= len(fleet.swarm.conns):
                break
            await asyncio.sleep(0.05)
        converged_at = time.perf_counter() - t0
        await sample(converged_at, total, last)
        await asyncio.gather(*tasks, return_exceptions=True)
        await db.close()
        for conn in free:
            await conn.close()
        converged = fleet.swarm.done_count >= len(fleet.swarm.conns)
        curve.notes.append(
            f"{total} joins offered in {sent_done:.1f} s ({late} found all {IN_FLIGHT} slots busy), {answered} "
            f"answered, {failed} failed; every agent received all {total} peer_added events: "
            f"{'yes' if converged else 'NO'} at t = {converged_at:.1f} s "
            f"(agents done: {fleet.swarm.done_count}/{len(fleet.swarm.conns)})")
        curve.notes.append("signatures are not verified here (fanout and rotation verify every frame); arrival "
                           "is counted by the `event: peer_added` marker per stream")
        emit(curve)
    finally:
        if fleet is not None:
            fleet.close()
        stack.close()
