"""plexd settings. Precedence, lowest first: built-in defaults, the YAML file (default
/etc/plexd/config.yaml), `PLEXD_<NAME>` environment variables, command-line flags. YAML keys are the
field names below; `-` and `_` are interchangeable."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONFIG_FILE = Path("/etc/plexd/config.yaml")
ENV_PREFIX = "PLEXD_"


class ConfigError(Exception):
    pass


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_plane_url: str
    bootstrap_token: str | None = Field(default=None, repr=False)
    bootstrap_token_file: Path | None = None
    project_id: str | None = None  # derivable from the token
    resource_id: str = Field(default_factory=socket.gethostname)
    # Create the Resource if the handle does not exist yet (the tutorial's adoption path).
    adopt_resource: bool = True
    state_dir: Path = Path("/var/lib/plexd")
    interface: str = "plexd0"
    listen_port: int = Field(default=51820, ge=1, le=65535)
    backend: Literal["auto", "kernel", "userspace", "fake"] = "auto"
    wireguard_go: str = "wireguard-go"
    advertise_endpoint: str | None = None  # host:port peers should dial; default: default-route address
    # None: beat at the Domain's interval (learnt from the state pull; 30 s until then).
    heartbeat_interval: float | None = Field(default=None, gt=0)
    state_pull_interval: float = Field(default=60.0, gt=0)
    endpoint_report_interval: float = Field(default=60.0, gt=0)
    psk_retry_interval: float = Field(default=2.0, gt=0)
    persistent_keepalive: int = Field(default=25, ge=0, le=65535)
    down_on_exit: bool = False
    log_level: str = "info"

    @field_validator("control_plane_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("control_plane_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("interface")
    @classmethod
    def _ifname(cls, value: str) -> str:
        if not 1 <= len(value) <= 15 or "/" in value or " " in value:
            raise ValueError("interface must be a Linux interface name (1-15 characters)")
        return value

    def read_bootstrap_token(self) -> str | None:
        if self.bootstrap_token:
            return self.bootstrap_token.strip()
        if self.bootstrap_token_file:
            try:
                return self.bootstrap_token_file.read_text().strip() or None
            except FileNotFoundError:
                return None
        return None


def load_config(config_file: Path | None, flags: Mapping[str, Any],
                environ: Mapping[str, str] | None = None) -> AgentConfig:
    """`config_file=None` means the default path, which may be absent; an explicit file must exist."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = config_file or Path(environ.get(ENV_PREFIX + "CONFIG", DEFAULT_CONFIG_FILE))
    explicit = config_file is not None or (ENV_PREFIX + "CONFIG") in environ
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        data.update({str(k).replace("-", "_"): v for k, v in loaded.items()})
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    for name in AgentConfig.model_fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None:
            data[name] = value
    data.update({k: v for k, v in flags.items() if v is not None})
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid plexd configuration: {problems}") from None
