"""The O(N²) guard: the same join, rotation and state pull at N and 2N anchored Nodes (all with
real SSE streams). Time and server-side SQL statements per event may at most double when N
doubles (one event reaches N agents, so O(N) per event is expected; O(N²) would quadruple)."""

from __future__ import annotations

import asyncio
import os
import time

from bench.fleet import Fleet
from bench.harness import Postgres, Table, emit, make_stack, median, ms, percentile, prefill
from bench.rawhttp import Connection
from bench.s_fanout import register_one
from bench.s_register import mint_tokens, public_keys
from bench.s_rotation import rotate_round
from bench.s_state import measure
from bench.swarm import Swarm, Target

BASE = int(os.environ.get("BENCH_SCALING_N", "1000"))
ROUNDS = 3


async def at_size(pg: Postgres, n: int) -> dict[str, tuple[float, float]]:
    stack = await make_stack(pg)
    fleet = rotators = None
    try:
        server = stack.server
        nodes = await prefill(stack, n)
        fleet = Fleet(stack, nodes[ROUNDS:])
        await fleet.connect()
        host, port = stack.url.split("//", 1)[1].split(":")
        rotators = Swarm(host, int(port))
        await rotators.connect([Target(f"/v1/nodes/{x.id}/events", {"Authorization": f"Bearer {x.bearer()}"})
                                for x in nodes[:ROUNDS]])
        await asyncio.sleep(1)
        conn = Connection(host, int(port))
        tokens, keys = await mint_tokens(stack, ROUNDS), public_keys(ROUNDS)
        join_t, join_q, join_cpu = [], [], []
        for i in range(ROUNDS):
            fleet.swarm.arm(b"event: peer_added")
            q0, t0, c0 = server.queries(), time.perf_counter(), server.stats.cpu_seconds()
            await register_one(conn, stack, tokens[i], keys[i])
            if not await fleet.swarm.wait_all(60):
                raise RuntimeError("join did not reach every agent")
            join_t.append(percentile(fleet.swarm.arrivals(t0), 99))
            join_q.append(server.queries() - q0)
            join_cpu.append(server.stats.cpu_seconds() - c0)
            await asyncio.sleep(0.3)
        c0 = server.stats.cpu_seconds()
        rot = [await rotate_round(stack, fleet, rotators, i, x, conn) for i, x in enumerate(nodes[:ROUNDS])]
        rot_cpu = (server.stats.cpu_seconds() - c0) / ROUNDS  # includes the 0-wait rounds' idle, not much else
        await conn.close()
        [(_, state, _, state_q, state_cpu)] = await measure(stack, nodes, [(1, 60, 6.0)], label=f"scaling-state-{n}")
        return {
            "join (POST → last agent)": (median(join_t), median(join_q), median(join_cpu)),
            "rotation (trigger → last peer)": (median([r["p99"] for r in rot]), median([r["queries"] for r in rot]),
                                               rot_cpu),
            "state pull (1 client)": (median(state.latencies), state_q, state_cpu / 1000),
        }
    finally:
        for s in (fleet, rotators):
            if s is not None:
                s.close()
        stack.close()


async def run(pg: Postgres) -> None:
    small = await at_size(pg, BASE)
    large = await at_size(pg, 2 * BASE)
    table = Table(f"O(N²) guard — N = {BASE:,} vs 2N = {2 * BASE:,} anchored Nodes with streams",
                  ["event", "time @N ms", "time @2N ms", "time ×", "server CPU @N ms", "server CPU @2N ms", "CPU ×",
                   "SQL @N", "SQL @2N", "SQL ×", "verdict (CPU and SQL)"])
    for name in small:
        (t1, q1, c1), (t2, q2, c2) = small[name], large[name]
        ok = c2 / c1 <= 2.2 and q2 / max(q1, 1) <= 2.0
        table.add(name, ms(t1), ms(t2), f"{t2 / t1:.2f}", ms(c1), ms(c2), f"{c2 / c1:.2f}", f"{q1:.0f}", f"{q2:.0f}",
                  f"{q2 / max(q1, 1):.2f}", "≤ 2× (no O(N²))" if ok else "MORE THAN DOUBLES")
    table.notes.append("time: p99 over agents of the arrival (join, rotation) or the median request (state); "
                       "server CPU (/proc utime+stime) per event is the verdict's measure because wall time on a "
                       "shared 2-core machine moves with other load; SQL: statements the server sent per event "
                       "(bench/qcount.py), worker included; 10% tolerance on CPU")
    emit(table)
