"""Worker hook: the periodic sweeps of the mesh — reachability (healthy → stale → unreachable) and
endpoint freshness. Set-based statements, safe to run in several workers at once."""

from __future__ import annotations

from plexsphere.server.runtime import Runtime
from plexsphere.services import peers, reachability
from plexsphere.worker.periodic import Periodic

SWEEP_INTERVAL_S = 2.0


async def sweep_once(runtime: Runtime) -> tuple[int, int]:
    async with runtime.pool.acquire() as conn:
        degraded = await reachability.sweep(conn)
        async with conn.transaction():
            expired = await peers.expire_endpoints(conn, runtime.signing)
    return degraded, expired


_periodic = Periodic("mesh-sweeper", SWEEP_INTERVAL_S, sweep_once)
start = _periodic.start
stop = _periodic.stop
