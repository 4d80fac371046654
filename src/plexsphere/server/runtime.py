"""What a server process holds while it runs. Everything here is derived from PostgreSQL and the
keyring; nothing is a source of truth, so any number of processes can serve one database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from plexsphere.config import Settings
from plexsphere.crypto import Keyring
from plexsphere.server.notify import Notifier

if TYPE_CHECKING:
    from plexsphere.services.signing import SigningKeys


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    keyring: Keyring
    notifier: Notifier
    signing: SigningKeys
    started_at: datetime
    # Per-area extensions (event hub, rate limiters, …) keyed by name; set in app lifespan.
    extras: dict[str, Any] = field(default_factory=dict)
