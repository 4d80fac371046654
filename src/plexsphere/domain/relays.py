"""Bridge relays as pure rules: the relay configuration a bridge Resource carries, which edges hole
punching cannot form, which bridges may relay and in what order, and what a Node's report about
its own edges means. No I/O.

Who relays (docs/nat.md): a bridge Node (enrolled with a `bridge` token, bound to a Resource of kind
`bridge`) whose Resource has an enabled relay and whose underlay endpoint is fresh. The Domain's
relays are ordered healthiest first, then by node id; every relayed edge uses the first relay both
of its ends can reach, so with the same list the two ends agree without talking to each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plexsphere.domain.errors import ProblemError
from plexsphere.domain.reachability import STATES, UNREACHABLE

_RELAY_FIELDS = frozenset({"enabled", "listen_port"})

# Hole punching needs the NAT on each side to keep one mapping for every destination. A symmetric
# NAT does not, so it only meets a peer directly when that peer accepts packets from anywhere once
# it has sent somewhere (full cone) or from any port of an address it sent to (restricted).
_UNTRAVERSABLE_WITH_SYMMETRIC = frozenset({"symmetric", "port_restricted"})


@dataclass(frozen=True)
class RelayConfig:
    enabled: bool
    listen_port: int


def parse_relay_config(body: Any) -> RelayConfig:
    """BridgeRelayConfigureRequest: both fields required, nothing else accepted."""
    if not isinstance(body, dict):
        raise ProblemError(400, "invalid_body", "the body must be a JSON object")
    unknown = sorted(set(body) - _RELAY_FIELDS)
    if unknown:
        raise ProblemError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(_RELAY_FIELDS - set(body))
    if missing:
        raise ProblemError(400, "invalid_body", f"missing required field(s): {', '.join(missing)}")
    enabled, port = body["enabled"], body["listen_port"]
    if not isinstance(enabled, bool):
        raise ProblemError(400, "invalid_body", "enabled must be a boolean")
    if isinstance(port, bool) or not isinstance(port, int):
        raise ProblemError(400, "invalid_body", "listen_port must be an integer")
    if not 1 <= port <= 65535:
        raise ProblemError(400, "relay_port_out_of_range", "listen_port must be in the range 1..65535")
    return RelayConfig(enabled, port)


def needs_relay(nat_a: str | None, nat_b: str | None) -> bool:
    """Whether hole punching cannot join two Nodes with these NAT types (symmetric against
    symmetric or port-restricted). Unknown types are assumed to punch: the agents still fall back
    to a relay when the direct handshake does not come."""
    if nat_a == "symmetric":
        return nat_b in _UNTRAVERSABLE_WITH_SYMMETRIC
    if nat_b == "symmetric":
        return nat_a in _UNTRAVERSABLE_WITH_SYMMETRIC
    return False


@dataclass(frozen=True)
class Relay:
    """A bridge that may relay: its Node, health, and the `host:port` Nodes dial."""

    node_id: str
    reachability: str
    endpoint: str  # fallback_endpoint: the bridge's reported host with the relay's listen_port

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.endpoint.rpartition(":")[2])


def fallback_endpoint(bridge_endpoint: str | None, listen_port: int) -> str | None:
    """The relay's `host:port`: the host the bridge reported for itself (its underlay address as
    seen from outside) with the relay's port. None while the bridge has no fresh endpoint."""
    if not bridge_endpoint:
        return None
    host, sep, _ = bridge_endpoint.rpartition(":")
    return f"{host}:{listen_port}" if sep and host else None


def relay_order(candidates: Iterable[Relay]) -> list[Relay]:
    """The Domain's relays in preference order: healthiest first, then lowest node id (a total
    order, so every reader agrees). Unreachable bridges are left out: nothing is gained by sending
    Nodes to a relay that has not been heard from for minutes."""
    rank = {state: i for i, state in enumerate(STATES)}
    return sorted((c for c in candidates if c.reachability != UNREACHABLE),
                  key=lambda c: (rank[c.reachability], c.node_id))


def relay_for_pair(a: str, b: str, relays: Sequence[Relay]) -> Relay | None:
    """The relay an edge between Nodes `a` and `b` uses: the first one that is neither end."""
    for relay in relays:
        if relay.node_id not in (a, b):
            return relay
    return None


def predicted_relay(source_nat: str | None, target_nat: str | None, source_is_bridge: bool,
                    target_is_bridge: bool, relay: Relay | None) -> Relay | None:
    """The relay an edge is expected to use before its source reported anything: only edges hole
    punching cannot form, never edges to or from a bridge (bridges are reached directly)."""
    if source_is_bridge or target_is_bridge or relay is None:
        return None
    return relay if needs_relay(source_nat, target_nat) else None


# -- what a Node reports about its edges (heartbeat nat_summary) ----------------------------------
MAX_REPORTED_RELAYED = 4096


def parse_relayed_peers(nat_summary: Mapping[str, Any]) -> dict[str, str] | None:
    """`nat_summary.relayed_peers` ({peer node id: relay node id}) in canonical form, or None when the
    heartbeat does not say (an agent that does not report paths). Malformed entries are dropped:
    nat_summary is free-form and a report must never fail a heartbeat."""
    raw = nat_summary.get("relayed_peers")
    if not isinstance(raw, dict):
        return None
    out: dict[str, str] = {}
    for peer, relay in list(raw.items())[:MAX_REPORTED_RELAYED]:
        try:
            out[str(uuid.UUID(str(peer)))] = str(uuid.UUID(str(relay)))
        except ValueError:
            continue
    return dict(sorted(out.items()))
