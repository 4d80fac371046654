"""Per-peer path choice (agent/paths.py): direct first when hole punching can work, the relay at
once when it cannot, fallback after a bounded wait, failover along the relay list, keepalives that
differ at the two ends."""

from __future__ import annotations

import pytest

from plexsphere.agent.paths import (
    DIRECT_TIMEOUT,
    RETRY_DIRECT,
    PeerFacts,
    RelayChoice,
    choose,
    keepalive_for,
    punchable,
    relayed_report,
)

R1, R2 = RelayChoice("r1", "203.0.113.1:3478"), RelayChoice("r2", "203.0.113.2:3478")
CONE = PeerFacts("198.51.100.2:51820", "port_restricted", False)
SYM = PeerFacts("198.51.100.3:40000", "symmetric", False)


@pytest.mark.parametrize(("own", "peer", "ok"), [
    ("symmetric", "symmetric", False), ("symmetric", "port_restricted", False), ("port_restricted", "symmetric", False),
    ("symmetric", "restricted", True), ("full_cone", "symmetric", True), ("port_restricted", "port_restricted", True),
    ("unknown", "symmetric", True), (None, None, True),
])
def test_punchable(own, peer, ok):
    assert punchable(own, peer) is ok


def test_unpunchable_pairs_relay_at_once_through_the_first_live_relay():
    path = choose(SYM, "port_restricted", [R1, R2], None, None, None, 0.0)
    assert (path.mode, path.relay) == ("relayed", R1)
    assert choose(SYM, "port_restricted", [R1, R2], {"r2"}, path, None, 1.0).relay == R2  # r1 stopped answering
    assert choose(PeerFacts(None, None, False), "full_cone", [R1], None, None, None, 0).mode == "relayed"


def test_direct_first_then_relay_after_the_timeout_then_direct_again():
    path = choose(CONE, "port_restricted", [R1], None, None, None, 100.0)
    assert path.mode == "direct" and path.endpoint_of == CONE.endpoint
    assert choose(CONE, "port_restricted", [R1], None, path, None, 100.0 + DIRECT_TIMEOUT - 1) is path
    relayed = choose(CONE, "port_restricted", [R1], None, path, None, 100.0 + DIRECT_TIMEOUT)
    assert (relayed.mode, relayed.endpoint_of) == ("relayed", R1.endpoint)
    assert choose(CONE, "port_restricted", [R1], None, relayed, 5.0, 200.0) is relayed
    retry = choose(CONE, "port_restricted", [R1], None, relayed, 5.0, relayed.since + RETRY_DIRECT)
    assert retry.mode == "direct"
    moved = PeerFacts("198.51.100.9:51820", "port_restricted", False)  # the peer moved: try direct now
    assert choose(moved, "port_restricted", [R1], None, relayed, 5.0, 201.0).mode == "direct"


def test_a_handshake_keeps_a_direct_path():
    path = choose(CONE, "restricted", [R1], None, None, None, 0.0)
    assert choose(CONE, "restricted", [R1], None, path, 3.0, 1000.0) is path


def test_bridges_and_relayless_domains_are_always_direct():
    bridge = PeerFacts("203.0.113.9:51820", "full_cone", True)
    assert choose(bridge, "symmetric", [R1], None, None, None, 0).mode == "direct"
    assert choose(SYM, "symmetric", [], None, None, None, 0).mode == "direct"
    assert choose(SYM, "symmetric", [R1], set(), None, None, 0).mode == "direct"  # no relay answers


def test_keepalives_differ_at_the_two_ends_and_the_report_lists_relayed_peers():
    assert keepalive_for("a", "b") != keepalive_for("b", "a")
    relayed = choose(SYM, "symmetric", [R1], None, None, None, 0)
    direct = choose(CONE, "full_cone", [R1], None, None, None, 0)
    assert relayed_report({"p2": relayed, "p1": direct}) == {"p2": "r1"}
