"""Relay rules (domain/relays.py): which edges relay, which bridge, deterministic tie-breaks, and the
relay configuration a bridge Resource accepts."""

from __future__ import annotations

import random

import pytest

from plexsphere.domain.errors import ProblemError
from plexsphere.domain.relays import (
    Relay,
    fallback_endpoint,
    needs_relay,
    parse_relay_config,
    parse_relayed_peers,
    predicted_relay,
    relay_for_pair,
    relay_order,
)

NATS = ("full_cone", "restricted", "port_restricted", "symmetric", "unknown", None)


@pytest.mark.parametrize(("a", "b", "relay"), [
    ("symmetric", "symmetric", True), ("symmetric", "port_restricted", True), ("port_restricted", "symmetric", True),
    ("symmetric", "full_cone", False), ("symmetric", "restricted", False), ("symmetric", "unknown", False),
    ("symmetric", None, False), ("port_restricted", "port_restricted", False), ("restricted", "full_cone", False),
])
def test_which_pairs_relay(a, b, relay):
    assert needs_relay(a, b) is relay
    assert needs_relay(b, a) is relay  # symmetric in its two ends


def test_relay_order_is_healthiest_then_lowest_id_and_drops_unreachable():
    r = [Relay("b2", "healthy", "203.0.113.2:3478"), Relay("b1", "stale", "203.0.113.1:3478"),
         Relay("b0", "unreachable", "203.0.113.0:3478"), Relay("b3", "healthy", "203.0.113.3:3478")]
    for _ in range(20):  # the input order never matters
        random.shuffle(r)
        assert [x.node_id for x in relay_order(r)] == ["b2", "b3", "b1"]


def test_the_relay_of_a_pair_is_never_one_of_its_ends():
    relays = relay_order([Relay("b1", "healthy", "h:1"), Relay("b2", "healthy", "h:2")])
    assert relay_for_pair("a", "c", relays).node_id == "b1"
    assert relay_for_pair("b1", "c", relays).node_id == "b2"
    assert relay_for_pair("b1", "b2", relays) is None
    assert relay_for_pair("a", "c", []) is None


def test_predicted_relay_only_for_unpunchable_non_bridge_edges():
    relay = Relay("b1", "healthy", "h:1")
    for a in NATS:
        for b in NATS:
            got = predicted_relay(a, b, False, False, relay)
            assert (got is relay) is needs_relay(a, b)
            assert predicted_relay(a, b, True, False, relay) is None
            assert predicted_relay(a, b, False, True, relay) is None
            assert predicted_relay(a, b, False, False, None) is None


def test_fallback_endpoint_takes_the_bridge_host_and_the_relay_port():
    assert fallback_endpoint("203.0.113.7:51820", 3478) == "203.0.113.7:3478"
    assert fallback_endpoint("[2001:db8::1]:51820", 5249) == "[2001:db8::1]:5249"
    assert fallback_endpoint(None, 3478) is None
    assert fallback_endpoint("", 3478) is None
    assert Relay("b", "healthy", "[2001:db8::1]:5249").host == "[2001:db8::1]"
    assert Relay("b", "healthy", "[2001:db8::1]:5249").port == 5249


@pytest.mark.parametrize(("body", "code"), [
    ([], "invalid_body"), ({"enabled": True}, "invalid_body"), ({"listen_port": 1}, "invalid_body"),
    ({"enabled": True, "listen_port": 1, "x": 1}, "invalid_body"), ({"enabled": 1, "listen_port": 1}, "invalid_body"),
    ({"enabled": True, "listen_port": "1"}, "invalid_body"), ({"enabled": True, "listen_port": True}, "invalid_body"),
    ({"enabled": True, "listen_port": 1.5}, "invalid_body"), ({"enabled": True, "listen_port": 0}, "relay_port_out_of_range"),
    ({"enabled": True, "listen_port": 65536}, "relay_port_out_of_range"),
    ({"enabled": False, "listen_port": -1}, "relay_port_out_of_range"),
])
def test_bad_relay_configs(body, code):
    with pytest.raises(ProblemError) as err:
        parse_relay_config(body)
    assert (err.value.status, err.value.code) == (400, code)


def test_good_relay_configs():
    assert parse_relay_config({"enabled": True, "listen_port": 1}).listen_port == 1
    assert parse_relay_config({"listen_port": 65535, "enabled": False}).enabled is False


def test_relayed_peer_reports_are_canonical_and_never_fail():
    a, b = "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0c1", "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0d2"
    assert parse_relayed_peers({}) is None
    assert parse_relayed_peers({"relayed_peers": []}) is None
    assert parse_relayed_peers({"relayed_peers": {}}) == {}
    assert parse_relayed_peers({"relayed_peers": {b.upper(): a, "x": a, a: 7}}) == {b: a}
