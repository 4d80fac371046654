"""`plexd` command line: status output from the state dir, refusal paths, and that the shipped
example configuration is valid."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from plexsphere.agent.config import load_config
from plexsphere.agent.identity import Identity, IdentityStore, public_key_of
from plexsphere.agent.main import app
from plexsphere.agent.model import key_b64

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()


def enrolled_state(tmp_path: Path) -> tuple[Path, Identity]:
    store = IdentityStore(tmp_path / "state")
    private = store.load_or_create_private_key()
    identity = Identity(
        node_id=uuid.uuid4(), nsk=bytes(range(32)), env="dev", project_id=uuid.uuid4(), resource_id="edge-01",
        control_plane_url="http://127.0.0.1:8080", mesh_ip="10.50.0.1", domain_mesh_cidr="10.50.0.0/24",
        signing_key_id="did:plexsphere:domain/dev#k1", signing_keys={"did:plexsphere:domain/dev#k1": "A" * 43 + "="},
    )
    store.save(identity)
    store.write_status({"interface": "plexd0", "backend": "userspace", "peers": [
        {"node_id": str(uuid.uuid4()), "mesh_ip": "10.50.0.2", "public_key": "B" * 43 + "=",
         "endpoint": "192.0.2.2:51820", "psk": True}]})
    (tmp_path / "empty.yaml").write_text("")
    assert public_key_of(private)
    return store.dir, identity


def test_status_json_shows_identity_and_peers_but_no_secrets(tmp_path: Path) -> None:
    state_dir, identity = enrolled_state(tmp_path)
    result = runner.invoke(app, ["status", "--config", str(tmp_path / "empty.yaml"), "--state-dir", str(state_dir),
                                 "-o", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["node_id"] == str(identity.node_id) and report["mesh_ip"] == "10.50.0.1"
    assert report["public_key"] == key_b64(public_key_of(IdentityStore(state_dir).private_key()))
    assert [p["mesh_ip"] for p in report["peers"]] == ["10.50.0.2"]
    assert "nsk" not in report and key_b64(identity.nsk) not in result.output


def test_status_table_lists_peers(tmp_path: Path) -> None:
    state_dir, identity = enrolled_state(tmp_path)
    result = runner.invoke(app, ["status", "--config", str(tmp_path / "empty.yaml"), "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    assert str(identity.node_id) in result.output
    assert "10.50.0.2" in result.output and "192.0.2.2:51820" in result.output


def test_status_without_identity_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = runner.invoke(app, ["status", "--config", str(tmp_path / "empty.yaml"), "--state-dir",
                                 str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "not enrolled" in result.output


def test_up_without_identity_or_token_is_a_fatal_error(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = runner.invoke(app, ["up", "--config", str(tmp_path / "empty.yaml"), "--control-plane-url",
                                 "http://127.0.0.1:9", "--state-dir", str(tmp_path / "s"), "--backend", "fake"])
    assert result.exit_code == 1
    assert "no bootstrap token" in result.output


def test_up_rejects_an_unknown_backend(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    result = runner.invoke(app, ["up", "--config", str(tmp_path / "empty.yaml"), "--control-plane-url",
                                 "http://127.0.0.1:9", "--backend", "quantum"])
    assert result.exit_code == 1 and "backend" in result.output


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "deploy" / "config.example.yaml", {}, environ={})
    assert config.interface == "plexd0" and config.backend == "auto"
