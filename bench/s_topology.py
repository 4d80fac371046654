"""Scenario 4 — topology: GET /v1/domains/{id}/mesh/topology at 100, 500 and 1,000 anchored Nodes
(≈1 M directed edges): time to last byte, bytes, peak server memory above the idle RSS, time per
edge (must stay flat: linear in edges) and `plexctl mesh topology --summary` at the largest size.
The raw limit: the same edges encoded by a bare orjson loop in this process (no database, no
HTTP) — the least Python can spend per edge."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import orjson

from bench.harness import PYTHON, Postgres, Table, emit, make_stack, median, ms, prefill
from bench.rawhttp import Connection

SIZES = [100, 500, 1000]
REPEATS = 3


def raw_encode(n: int) -> tuple[float, int]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    t0 = time.perf_counter()
    size = 0
    for source in ids:
        chunk = b",".join(orjson.dumps({"source_node_id": source, "target_node_id": target, "mode": "direct",
                                        "relay_node_id": None, "status": "healthy"})
                          for target in ids if target != source)
        size += len(chunk)
    return time.perf_counter() - t0, size


def run_plexctl(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    return done, time.perf_counter() - t0


async def run(pg: Postgres) -> None:
    stack = await make_stack(pg)
    try:
        server = stack.server
        host, port = stack.url.split("//", 1)[1].split(":")
        conn = Connection(host, int(port))
        path = f"/v1/domains/{stack.domain_id}/mesh/topology"
        table = Table("topology — GET /v1/domains/{id}/mesh/topology (streamed)",
                      ["anchored nodes", "edges", "bytes", "TTFB ms", "time to last byte ms", "µs/edge",
                       "raw orjson µs/edge", "ratio", "peak RSS above idle MiB", "summary ms"])
        have = 0
        for size in SIZES:
            await prefill(stack, size - have)
            have = size
            edges = size * (size - 1)
            ttlb, ttfb, peaks, nbytes = [], [], [], 0
            await conn.request("GET", path, headers=stack.admin_headers(), keep_body=False)  # warm-up
            for _ in range(REPEATS):
                idle = server.stats.rss_kib()
                server.stats.reset_peak()
                t0 = time.perf_counter()
                resp = await conn.request("GET", path, headers=stack.admin_headers(), keep_body=False)
                if resp.status != 200:
                    raise RuntimeError(f"topology answered {resp.status}")
                ttlb.append(resp.last_byte - t0)
                ttfb.append(resp.first_byte - t0)
                nbytes = len(resp.body)
                peaks.append(max(server.stats.peak_rss_kib() - idle, 0) / 1024)
            t0 = time.perf_counter()
            summary = await conn.request("GET", path + "?summary=true", headers=stack.admin_headers())
            summary_s = time.perf_counter() - t0
            raw_s, _ = raw_encode(size)
            table.add(f"{size:,}", f"{edges:,}", f"{nbytes:,}", ms(median(ttfb)), ms(median(ttlb)),
                      f"{median(ttlb) / edges * 1e6:.2f}", f"{raw_s / edges * 1e6:.2f}",
                      f"{median(ttlb) / raw_s:.1f}×", f"{max(peaks):.1f}",
                      ms(summary_s) if summary.status == 200 else f"HTTP {summary.status}")
        await conn.close()
        env = dict(os.environ, PLEXSPHERE_URL=stack.url, PLEXSPHERE_TOKEN=stack.admin_token,
                   XDG_CONFIG_HOME=str(stack.data_dir / "config"))
        plexctl = os.path.join(os.path.dirname(PYTHON), "plexctl")
        for args in (["--summary"], ["-o", "json"]):
            done, took = run_plexctl([plexctl, "mesh", "topology", "--domain", str(stack.domain_id), *args], env)
            table.notes.append(f"`plexctl mesh topology {' '.join(args)}` at {SIZES[-1]:,} nodes: exit "
                               f"{done.returncode} in {took:.1f} s, {len(done.stdout):,} bytes of output")
        table.notes.append("peak RSS: VmHWM reset before each request (clear_refs), minus the idle RSS")
        table.notes.append("goal: µs/edge flat across sizes (linear), peak memory flat (streamed)")
        emit(table)
    finally:
        stack.close()
