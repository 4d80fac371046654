"""Per-process settings (env prefix PLEXSPHERE_). Built once in the entry point and passed down;
nothing reads the environment anywhere else."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "plexsphere"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLEXSPHERE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    listen: str = "127.0.0.1:8080"
    # Unset: `up` starts the embedded PostgreSQL in data_dir and uses it.
    database_url: str | None = None
    # Key-encryption keyring; unset: generated into data_dir (0600) on first start.
    kek_file: Path | None = None
    # Public URL operators and agents use (device-flow links, printed hints). Defaults to http://<listen>.
    public_url: str | None = None
    role: str = "all"  # all | api | worker
    pool_min_size: int = 2
    pool_max_size: int = 20
    access_token_ttl_seconds: int = 12 * 3600
    api_token_default_ttl_seconds: int = 90 * 24 * 3600
    register_rate_per_minute: int = 600
    register_burst: int = 200
    log_level: str = "info"
    csrf_allowed_origins: str = ""
    # UDP port of the STUN responder plexd uses to learn its NAT (docs/nat.md); the next port up
    # answers change-port tests. 0 = off.
    stun_port: int = 0

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def keyring_path(self) -> Path:
        return self.kek_file or (self.data_dir / "kek.keyring")
