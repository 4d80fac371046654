"""NAT discovery as pure rules: the classification of this Node's NAT into the contract's
`nat_type` from what the observers saw (the STUN messages themselves: plexsphere/stun.py). No
sockets here (docs/nat.md).

An observer is a STUN server answered by the control plane or by a relay; the questions leave from
the WireGuard port itself, so the mapped address they report is the one the WireGuard socket has.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass


# -- classification -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """What one observer (its address) saw as this Node's WireGuard socket, or None: no answer."""

    observer: str  # ip of the STUN server asked
    mapped: tuple[str, int] | None


def classify(local: tuple[str, int] | None, observations: Sequence[Observation],
             change_port_answered: bool | None) -> str:
    """The contract's nat_type from the observations (never `none`).

    - fewer than two observers at different addresses answered → `unknown` (nothing to compare);
    - they saw different mappings → `symmetric` (a new mapping per destination);
    - same mapping, equal to the local socket address → no NAT: `full_cone` when an answer from
      another port came through, else a stateful filter makes it behave `port_restricted`;
    - same mapping → `restricted` when the answer from the observer's other port came through (the
      filter is per address; telling full cone apart would need a second observer address we ask
      to answer for the first), `port_restricted` when it did not, `unknown` when not tested.
    """
    answered: dict[str, tuple[str, int]] = {}
    for obs in observations:
        if obs.mapped is not None:
            answered.setdefault(obs.observer, obs.mapped)
    if len(answered) < 2:
        return "unknown"
    if len(set(answered.values())) > 1:
        return "symmetric"
    mapped = next(iter(answered.values()))
    if local is not None and mapped == local:
        return "full_cone" if change_port_answered else "port_restricted"
    if change_port_answered is None:
        return "unknown"
    return "restricted" if change_port_answered else "port_restricted"


def endpoint_text(mapped: tuple[str, int]) -> str:
    ip = ipaddress.ip_address(mapped[0])
    return f"[{ip.compressed}]:{mapped[1]}" if ip.version == 6 else f"{ip}:{mapped[1]}"


def consensus_endpoint(observations: Sequence[Observation]) -> str | None:
    """The endpoint to report: what most observers saw (the first on a tie), None when none
    answered. A symmetric NAT has no single true answer; peers then need the relay anyway."""
    seen = [o.mapped for o in observations if o.mapped is not None]
    if not seen:
        return None
    best = max(seen, key=lambda m: (seen.count(m), -seen.index(m)))
    return endpoint_text(best)
