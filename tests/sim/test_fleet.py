"""Issue 7 sim acceptance: N agents (200 by default; PLEXSPHERE_SIM_AGENTS overrides) in one Domain
converge after joins, a deletion and a rotation, with one real server process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.sim.harness import Fleet

pytestmark = [pytest.mark.slow]

AGENTS = int(os.environ.get("PLEXSPHERE_SIM_AGENTS", "200"))
# Joins cost N·(N−1) PSK fetches: 200 agents converged in ~200 s on a heavily shared 2-core machine.
JOIN_TIMEOUT = max(120.0, AGENTS * 3.0)


async def test_fleet_converges_after_joins_deletion_and_rotation(stack, tmp_path: Path) -> None:
    project = stack.create_project()
    fleet = Fleet(stack.url, stack.admin_token, project["id"], tmp_path)
    try:
        await fleet.join(AGENTS)
        joined_in = await fleet.wait_converged(JOIN_TIMEOUT, f"{AGENTS} joins")
        assert await fleet.server_view_mismatches() == []
        assert sorted({n.mesh_ip for n in fleet.live}) == sorted(n.mesh_ip for n in fleet.live)  # unique

        victim = fleet.nodes[AGENTS // 2]
        response = await fleet.admin.delete(f"/v1/nodes/{victim.node_id}")
        assert response.status_code in (200, 204), response.text
        await fleet.stop(victim)
        removed_in = await fleet.wait_converged(60, "a deletion")

        target = fleet.nodes[0]
        old_key = target.interface_public_key
        response = await fleet.admin.post(f"/v1/nodes/{target.node_id}/keys/rotate")
        assert response.status_code == 200, response.text
        rotated_in = await _wait_for_new_key(fleet, target, old_key)
        await fleet.wait_converged(60, "a rotation")
        assert target.agent.rotations_completed == 1
        assert await fleet.server_view_mismatches() == []
        print(f"\n{AGENTS} agents: joined in {joined_in:.1f}s, deletion in {removed_in:.1f}s, "
              f"rotation in {rotated_in:.1f}s")
    finally:
        await fleet.close()


async def _wait_for_new_key(fleet: Fleet, node, old_key: bytes, within: float = 30.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while node.interface_public_key == old_key:
        assert loop.time() - start < within, "the rotation did not complete on the node"
        await asyncio.sleep(0.1)
    return loop.time() - start
