"""Shutdown behaviour with the real server: SIGTERM-equivalent stop leaves the interface configured
unless down_on_exit, and a restarted agent reuses its identity and interface without re-enrolling."""

from __future__ import annotations

from pathlib import Path

from tests.sim.harness import Fleet


async def test_stop_keeps_or_removes_the_interface_and_restart_reuses_identity(stack, tmp_path: Path) -> None:
    project = stack.create_project()
    fleet = Fleet(stack.url, stack.admin_token, project["id"], tmp_path)
    try:
        keeper, leaver = await fleet.join(2)
        await fleet.wait_converged(30, "two joins")
        leaver.config = leaver.config.model_copy(update={"down_on_exit": True})
        leaver.agent.config = leaver.config
        await fleet.stop(keeper)
        await fleet.stop(leaver)
        assert keeper.backend.read().exists and keeper.backend.read().peers
        assert not leaver.backend.read().exists

        node_id, mesh_ip, key = keeper.node_id, keeper.mesh_ip, keeper.backend.read().private_key
        applied_before = len(keeper.backend.applied)
        restarted = await fleet.restart(keeper)
        assert (restarted.node_id, restarted.mesh_ip) == (node_id, mesh_ip)
        assert restarted.agent.private_key == key
        assert stack.sql_value("SELECT count(*) FROM plexsphere.nodes WHERE project_id = %s", project["id"]) == 2
        # The interface was already right: the restart changed nothing on it.
        assert keeper.backend.applied[applied_before:] == []
    finally:
        await fleet.close()
