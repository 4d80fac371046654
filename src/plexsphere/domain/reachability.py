"""Reachability of a Peer (DECISIONS 8): pure rules, no I/O.

    anchored ─────────────────────────────► healthy
    any state ── heartbeat accepted ──────► healthy
    healthy ── last sign of life older than stale_after ──────► stale
    any ────── last sign of life older than unreachable_after ─► unreachable

The last sign of life is the latest accepted heartbeat, or the anchoring when there was none yet.
Thresholds are per-Domain settings (defaults 90 s and 300 s).
"""

from __future__ import annotations

from datetime import datetime, timedelta

HEALTHY = "healthy"
STALE = "stale"
UNREACHABLE = "unreachable"
STATES = (HEALTHY, STALE, UNREACHABLE)
_RANK = {state: rank for rank, state in enumerate(STATES)}

DEFAULT_STALE_AFTER_S = 90
DEFAULT_UNREACHABLE_AFTER_S = 300


def state_for(last_seen: datetime, now: datetime, stale_after_s: int, unreachable_after_s: int) -> str:
    age = now - last_seen
    if age >= timedelta(seconds=unreachable_after_s):
        return UNREACHABLE
    if age >= timedelta(seconds=stale_after_s):
        return STALE
    return HEALTHY


def worse(*states: str) -> str:
    """The least reachable of the given states (an edge is only as good as its worst end)."""
    return max(states, key=_RANK.__getitem__)


def is_degraded(state: str) -> bool:
    return state != HEALTHY
