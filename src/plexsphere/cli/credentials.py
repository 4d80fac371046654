"""plexctl's stored login: `$XDG_CONFIG_HOME/plexsphere/credentials.json` (default
`~/.config/plexsphere/`), mode 0600. PLEXSPHERE_URL and PLEXSPHERE_TOKEN override it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Credentials:
    url: str
    token: str
    subject: str | None = None
    expires_at: str | None = None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plexsphere"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> Credentials | None:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
        return Credentials(**{k: data.get(k) for k in ("url", "token", "subject", "expires_at")})
    except (OSError, ValueError, TypeError):
        return None


def save_credentials(credentials: Credentials) -> None:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = credentials_path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(credentials), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def clear_credentials() -> bool:
    try:
        credentials_path().unlink()
        return True
    except FileNotFoundError:
        return False


def effective() -> Credentials | None:
    """Stored credentials with the environment's overrides applied."""
    stored = load_credentials()
    url = os.environ.get("PLEXSPHERE_URL") or (stored.url if stored else None)
    token = os.environ.get("PLEXSPHERE_TOKEN") or (stored.token if stored else None)
    if not url:
        return None
    return Credentials(url=url.rstrip("/"), token=token or "", subject=stored.subject if stored else None)
