"""plexd enrolment against the real server: the first start registers and persists the identity
with private permissions; later starts reuse it without any network call; a consumed token with no
saved identity stops `plexd up` with the problem code named."""

from __future__ import annotations

import asyncio
import base64
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from plexsphere.agent.config import AgentConfig
from plexsphere.agent.identity import IdentityStore, public_key_of
from plexsphere.agent.runtime import FatalAgentError, enrol
from plexsphere.client.node import NodeClient


def issue_token(stack, project_id: str) -> str:
    with stack.http() as http:
        response = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                             json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
        assert response.status_code in (200, 201), response.text
        return response.json()["token"]


async def test_first_start_registers_then_identity_is_reused_offline(stack, tmp_path: Path) -> None:
    project = stack.create_project()
    token = issue_token(stack, project["id"])
    config = AgentConfig(control_plane_url=stack.url, bootstrap_token=token, resource_id=stack.unique("r"),
                         state_dir=tmp_path / "state", backend="fake")
    store = IdentityStore(config.state_dir)
    client = NodeClient(stack.url)
    try:
        identity = await enrol(config, store, client)
    finally:
        await client.aclose()
    assert str(identity.project_id) == project["id"]
    assert identity.env == "dev" and identity.signing_key_id in identity.signing_keys
    assert len(base64.b64decode(identity.signing_keys[identity.signing_key_id])) == 32
    for path in (store.identity_path, store.key_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    # The server holds the public half of the key that never left the node.
    registered_key = stack.sql_value("SELECT public_key FROM plexsphere.nodes WHERE id = %s", identity.node_id)
    assert bytes(registered_key) == public_key_of(store.private_key())

    offline = NodeClient("http://127.0.0.1:9")  # nothing listens there: a network call would fail
    try:
        again = await enrol(config, store, offline)
    finally:
        await offline.aclose()
    assert again == identity


async def test_consumed_token_without_identity_is_a_fatal_error(stack, tmp_path: Path) -> None:
    project = stack.create_project()
    token = issue_token(stack, project["id"])
    first = AgentConfig(control_plane_url=stack.url, bootstrap_token=token, resource_id=stack.unique("r"),
                        state_dir=tmp_path / "first", backend="fake")
    client = NodeClient(stack.url)
    try:
        await enrol(first, IdentityStore(first.state_dir), client)
        second = first.model_copy(update={"state_dir": tmp_path / "second", "resource_id": stack.unique("r")})
        with pytest.raises(FatalAgentError, match="token_consumed"):
            await enrol(second, IdentityStore(second.state_dir), client)
    finally:
        await client.aclose()

    result = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "plexd"), "up", "--control-plane-url", stack.url, "--bootstrap-token", token,
         "--state-dir", str(tmp_path / "third"), "--backend", "fake", "--config", str(_empty(tmp_path))],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "token_consumed" in result.stderr
    assert token not in result.stderr  # the secret is not echoed back


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    return path
