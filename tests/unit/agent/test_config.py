"""Settings precedence (defaults < YAML < PLEXD_* env < flags) and bootstrap token parsing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from plexsphere.agent.config import ConfigError, load_config
from plexsphere.agent.token import TokenFormatError, parse_bootstrap_token
from plexsphere.crypto import base32_lower


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("control-plane-url: http://192.0.2.1:8080/\ninterface: fromfile0\nlisten_port: 6000\n")
    config = load_config(config_file, {"listen_port": 7000},
                         environ={"PLEXD_INTERFACE": "fromenv0", "PLEXD_HEARTBEAT_INTERVAL": "5"})
    assert config.control_plane_url == "http://192.0.2.1:8080"
    assert config.interface == "fromenv0"
    assert config.listen_port == 7000
    assert config.heartbeat_interval == 5.0
    assert config.state_dir == Path("/var/lib/plexd") and config.backend == "auto"


def test_absent_default_file_is_fine_but_an_explicit_one_must_exist(tmp_path: Path) -> None:
    env = {"PLEXD_CONFIG": str(tmp_path / "absent.yaml")}
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(None, {"control_plane_url": "http://x"}, environ=env)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml", {"control_plane_url": "http://x"}, environ={})


def empty_config(tmp_path: Path) -> Path:
    """An explicit empty file, so a machine's own /etc/plexd/config.yaml cannot leak into a test."""
    path = tmp_path / "empty.yaml"
    path.write_text("")
    return path


def test_invalid_settings_are_reported_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="listen_port"):
        load_config(empty_config(tmp_path), {"control_plane_url": "http://x", "listen_port": 0}, environ={})
    with pytest.raises(ConfigError, match="control_plane_url"):
        load_config(empty_config(tmp_path), {}, environ={})
    path = tmp_path / "c.yaml"
    path.write_text("control_plane_url: http://x\nunknown_key: 1\n")
    with pytest.raises(ConfigError, match="unknown_key"):
        load_config(path, {}, environ={})



def test_token_file_is_read_and_trimmed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("psb_dev_abc\n")
    base = empty_config(tmp_path)
    config = load_config(base, {"control_plane_url": "http://x", "bootstrap_token_file": token_file}, environ={})
    assert config.read_bootstrap_token() == "psb_dev_abc"
    assert "psb_s" not in repr(load_config(base, {"control_plane_url": "http://x", "bootstrap_token": "psb_s"},
                                           environ={}))


def test_token_yields_env_and_project() -> None:
    project = uuid.uuid4()
    token = f"psb_prod_{base32_lower(project.bytes)}_node_{base32_lower(b'0123456789abcdefghij')}"
    info = parse_bootstrap_token(token)
    assert (info.env, info.project_id, info.kind) == ("prod", project, "node")


@pytest.mark.parametrize("token", ["", "psb_dev", "nsk_dev_x_node_y", "psb_DEV_aaaa_node_bbbb",
                                   "psb_dev_" + "a" * 25 + "_node_bbbb"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenFormatError):
        parse_bootstrap_token(token)
