"""Which path each peer's packets take — direct to its reported endpoint, or through a relay — as
pure rules over what the agent knows (docs/nat.md). No I/O, no clock: `now` is passed in.

    bridge peer, or no relay to fall back to ............ direct
    no direct endpoint, or hole punching cannot work .... relayed (at once: no waiting for nothing)
    otherwise ........................................... direct first; relayed when no handshake
                                                          came within DIRECT_TIMEOUT; direct again
                                                          when something changes (the peer's
                                                          endpoint or NAT type) or after RETRY_DIRECT
    relayed ............................................. through the first relay of the Domain's
                                                          list that answers this Node's hellos, so
                                                          both ends of an edge meet on the same one

The two ends of a new edge are configured at the same instant; two wireguard-go ends with the same
keepalive can cross handshakes forever (../shared/design.md), so the two ends keep different
intervals (`keepalive_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DIRECT_TIMEOUT = 6.0  # seconds a direct attempt gets to show a handshake
RETRY_DIRECT = 300.0  # a relayed edge that could punch tries direct again this often
FRESH_HANDSHAKE = 180.0  # WireGuard re-handshakes at least every 2 minutes on a live tunnel
KEEPALIVE_LOW, KEEPALIVE_HIGH = 25, 21

_UNTRAVERSABLE_WITH_SYMMETRIC = frozenset({"symmetric", "port_restricted"})


def punchable(own_nat: str | None, peer_nat: str | None) -> bool:
    """False for the NAT pairs hole punching cannot join (symmetric against symmetric or
    port-restricted); unknown types are given their chance."""
    if own_nat == "symmetric":
        return peer_nat not in _UNTRAVERSABLE_WITH_SYMMETRIC
    if peer_nat == "symmetric":
        return own_nat not in _UNTRAVERSABLE_WITH_SYMMETRIC
    return True


@dataclass(frozen=True)
class RelayChoice:
    node_id: str
    endpoint: str


@dataclass(frozen=True)
class PeerFacts:
    endpoint: str | None  # the peer's reported endpoint (direct)
    nat_type: str | None
    is_bridge: bool


@dataclass(frozen=True)
class Path:
    mode: str  # "direct" | "relayed"
    since: float  # when this mode was chosen
    relay: RelayChoice | None = None
    facts: PeerFacts | None = None  # what the choice was made on (a change retries direct)

    @property
    def endpoint_of(self) -> str | None:
        return self.relay.endpoint if self.relay else (self.facts.endpoint if self.facts else None)


def usable_relay(relays: Sequence[RelayChoice], alive: set[str] | None) -> RelayChoice | None:
    """The first relay that answers (`alive`: node ids; None = not probed yet, trust the order)."""
    for relay in relays:
        if alive is None or relay.node_id in alive:
            return relay
    return None


def choose(facts: PeerFacts, own_nat: str | None, relays: Sequence[RelayChoice], alive: set[str] | None,
           current: Path | None, handshake_age: float | None, now: float) -> Path:
    relay = usable_relay(relays, alive)
    if facts.is_bridge or relay is None:
        return _keep(current, Path("direct", now, None, facts))
    if facts.endpoint is None or not punchable(own_nat, facts.nat_type):
        return _keep(current, Path("relayed", now, relay, facts))
    fresh = handshake_age is not None and handshake_age < FRESH_HANDSHAKE
    if current is None or current.facts != facts:
        return Path("direct", now, None, facts)  # new peer, or news about it: give direct a chance
    if current.mode == "direct":
        if fresh or now - current.since < DIRECT_TIMEOUT:
            return current
        return Path("relayed", now, relay, facts)
    if now - current.since >= RETRY_DIRECT:
        return Path("direct", now, None, facts)
    return _keep(current, Path("relayed", current.since, relay, facts))


def _keep(current: Path | None, wanted: Path) -> Path:
    """`wanted`, but keeping `current`'s start time when nothing but the time changed."""
    if current is not None and (current.mode, current.relay, current.facts) == (wanted.mode, wanted.relay,
                                                                                  wanted.facts):
        return current
    return wanted


def keepalive_for(own_node_id: str, peer_node_id: str) -> int:
    """Different intervals at the two ends of an edge (the lower node id keeps the longer one)."""
    return KEEPALIVE_LOW if own_node_id < peer_node_id else KEEPALIVE_HIGH


def relayed_report(paths: dict[str, Path]) -> dict[str, str]:
    """heartbeat nat_summary.relayed_peers: the peers sent through a relay, and which one."""
    return {peer: path.relay.node_id for peer, path in sorted(paths.items())
            if path.mode == "relayed" and path.relay is not None}
