"""Pure mesh rules: heartbeat and endpoint validation, reachability, event filtering and frames,
topology edges and the streamed topology document."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from plexsphere.domain import events, nodes, reachability, topology
from plexsphere.domain.errors import ProblemError
from plexsphere.domain.relays import Relay, relay_order

NOW = datetime(2026, 5, 27, 10, 0, 0, tzinfo=UTC)


def _code(fn, *args) -> str:
    with pytest.raises(ProblemError) as info:
        fn(*args)
    return info.value.code


# -- heartbeat ------------------------------------------------------------------------------------
def _beat(**overrides):
    body = {"client_now": "2026-05-27T10:00:30Z", "binary_checksum": "a" * 64, "binary_version": " v1 ",
            "nat_summary": {}}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def test_heartbeat_normalises_checksum_and_version():
    beat = nodes.validate_heartbeat(_beat(binary_checksum=base64.b64encode(b"\x01" * 32).decode()), NOW)
    assert beat.binary_checksum == "01" * 32 and beat.binary_version == "v1"


def test_heartbeat_skew_boundary_is_60_seconds_either_way():
    assert nodes.validate_heartbeat(_beat(client_now="2026-05-27T10:01:00Z"), NOW)
    assert nodes.validate_heartbeat(_beat(client_now="2026-05-27T09:59:00Z"), NOW)
    assert _code(nodes.validate_heartbeat, _beat(client_now="2026-05-27T10:01:01Z"), NOW) == "clock_skew"
    assert _code(nodes.validate_heartbeat, _beat(client_now="2026-05-27T09:58:59Z"), NOW) == "clock_skew"


@pytest.mark.parametrize(("overrides", "code"), [
    ({"client_now": ...}, "malformed_heartbeat_request"),
    ({"nat_summary": ...}, "malformed_heartbeat_request"),
    ({"binary_version": 7}, "malformed_heartbeat_request"),
    ({"extra": True}, "malformed_heartbeat_request"),
    ({"binary_checksum": ...}, "binary_checksum_empty"),
    ({"binary_checksum": "g" * 64}, "binary_checksum_empty"),
    ({"binary_checksum": 12}, "binary_checksum_empty"),
    ({"binary_version": ...}, "binary_version_empty"),
    ({"binary_version": "\t"}, "binary_version_empty"),
])
def test_heartbeat_codes(overrides, code):
    assert _code(nodes.validate_heartbeat, _beat(**overrides), NOW) == code


# -- endpoint -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "canonical"), [
    ("203.0.113.7:51820", "203.0.113.7:51820"),
    ("10.1.2.3:1", "10.1.2.3:1"),
    ("[2001:DB8:0:0::1]:65535", "[2001:db8::1]:65535"),
    ("203.0.113.7:08", "203.0.113.7:8"),
])
def test_endpoint_canonical_forms(text, canonical):
    assert nodes.parse_endpoint(text) == canonical


@pytest.mark.parametrize("text", [
    "203.0.113.7", "203.0.113.7:", ":51820", "203.0.113.7:65536", "203.0.113.7:-1", "203.0.113.7:+5",
    "203.0.113.07:51820", "2001:db8::1:51820", "[2001:db8::1]", "[fe80::1]:51820", "[fe80::1%eth0]:51820",
    "[::]:51820", "[::ffff:127.0.0.1]:51820", "127.0.0.1:1", "169.254.0.1:1", "0.0.0.0:1", "224.0.0.1:1",
    "255.255.255.255:1", "example.com:51820", " 203.0.113.7:51820", "",
])
def test_endpoint_refusals(text):
    assert nodes.parse_endpoint(text) is None


def test_endpoint_reported_at_older_than_ttl_is_clock_skew_even_within_60s():
    body = {"endpoint": "203.0.113.7:1", "nat_type": "unknown", "reported_at": "2026-05-27T09:59:30Z"}
    assert nodes.validate_endpoint(body, NOW, 300).endpoint == "203.0.113.7:1"
    assert _code(nodes.validate_endpoint, body, NOW, 20) == "endpoint_clock_skew"


# -- visibility -----------------------------------------------------------------------------------
def test_visibility_uses_view_relations_only():
    seen = nodes.visibility([("domain", "d1", "viewer"), ("domain", "d2", "parent"), ("project", "p1", "member"),
                             ("node", "n1", "agent"), ("platform", "plexsphere", "nothing")])
    assert (seen.everything, seen.domain_ids, seen.project_ids, seen.node_ids) == (False, {"d1"}, {"p1"}, {"n1"})
    assert nodes.visibility([("platform", "plexsphere", "admin")]).everything


# -- reachability ---------------------------------------------------------------------------------
def test_reachability_thresholds_and_worse():
    seen = NOW - timedelta(seconds=89)
    assert reachability.state_for(seen, NOW, 90, 300) == "healthy"
    assert reachability.state_for(NOW - timedelta(seconds=90), NOW, 90, 300) == "stale"
    assert reachability.state_for(NOW - timedelta(seconds=300), NOW, 90, 300) == "unreachable"
    assert reachability.worse("healthy", "unreachable", "stale") == "unreachable"
    assert reachability.worse("healthy", "healthy") == "healthy"


# -- events ---------------------------------------------------------------------------------------
def test_last_event_id_rule():
    assert events.parse_last_event_id(None) is None
    assert events.parse_last_event_id("  ") is None
    assert events.parse_last_event_id("0") == 0 and events.parse_last_event_id("42") == 42
    for bad in ("-1", "1e3", "abc", "1.0", "9" * 30):
        assert _code(events.parse_last_event_id, bad) == "invalid_last_event_id"


def test_concerns_target_and_exclude():
    me, other = uuid.uuid4(), uuid.uuid4()
    assert events.concerns(me, None, None)
    assert events.concerns(me, None, other)
    assert not events.concerns(me, None, me)
    assert events.concerns(me, me, None)
    assert not events.concerns(me, other, None)


def test_sse_frame_shape():
    assert events.sse_frame(7, "peer_added", '{"a":1}') == b'id: 7\nevent: peer_added\ndata: {"a":1}\n\n'
    with pytest.raises(ValueError):
        events.sse_frame(1, "x", '{"a":\n1}')


# -- topology -------------------------------------------------------------------------------------
def _node(i: int, state: str = "healthy", nat: str | None = None, bridge: bool = False) -> topology.TopologyNode:
    return topology.TopologyNode(f"00000000-0000-7000-8000-{i:012d}", f"10.0.0.{i}", state, nat, bridge)


def _relays(*bridges: topology.TopologyNode) -> list[Relay]:
    return relay_order(Relay(b.node_id, b.reachability, f"203.0.113.{i}:3478") for i, b in enumerate(bridges, 1))


def test_relayed_edges_pick_the_healthiest_relay_and_take_its_status():
    a, b = _node(1, nat="symmetric"), _node(2, nat="symmetric")
    sick_bridge, good_bridge = _node(3, "stale", bridge=True), _node(4, bridge=True)
    relays = _relays(sick_bridge, good_bridge)
    reach = {n.node_id: n.reachability for n in (a, b, sick_bridge, good_bridge)}
    e = topology.edge(a, b, relays, reach)
    assert (e["mode"], e["relay_node_id"], e["status"]) == ("relayed", good_bridge.node_id, "healthy")
    only_sick = topology.edge(a, b, _relays(sick_bridge), reach)
    assert only_sick["relay_node_id"] == sick_bridge.node_id and only_sick["status"] == "stale"
    assert topology.edge(a, good_bridge, relays)["mode"] == "direct"  # a bridge is reached directly
    assert topology.edge(a, b, [])["mode"] == "direct"  # no relay, nothing to relay through


def test_a_reported_edge_overrides_the_prediction():
    a, b, c = _node(1, nat="symmetric"), _node(2, nat="symmetric"), _node(3, nat="full_cone")
    bridge, other = _node(4, bridge=True), _node(5, "stale", bridge=True)
    relays = _relays(bridge, other)
    reach = {n.node_id: n.reachability for n in (a, b, c, bridge, other)}
    reported = topology.TopologyNode(a.node_id, a.mesh_ip, "healthy", "symmetric",
                                     relayed_peers={c.node_id: other.node_id})
    # a said: c through the other relay (its first did not answer), b direct (a punched through).
    assert topology.edge(reported, c, relays, reach) == {
        "source_node_id": a.node_id, "target_node_id": c.node_id, "mode": "relayed",
        "relay_node_id": other.node_id, "status": "stale"}
    assert topology.edge(reported, b, relays, reach)["mode"] == "direct"
    assert topology.edge(b, a, relays, reach)["relay_node_id"] == bridge.node_id  # b never reported


def test_streamed_document_equals_the_materialised_one():
    bridge = _node(4, bridge=True)
    reporter = topology.TopologyNode(_node(5).node_id, "10.0.0.5", "healthy", relayed_peers={_node(1).node_id:
                                                                                             bridge.node_id})
    nodes_ = [_node(1), _node(2, "stale", "symmetric"), _node(3, "unreachable", "symmetric"), bridge, reporter]
    relays = _relays(bridge)
    doc = orjson.loads(b"".join(topology.stream_json("d", "t", nodes_, relays)))
    reach = {n.node_id: n.reachability for n in nodes_}
    expected = [topology.edge(s, t, relays, reach) for s in nodes_ for t in nodes_ if s is not t]
    assert doc["edges"] == expected and len(expected) == topology.edge_count(5)
    assert doc["nodes"][1] == {"node_id": nodes_[1].node_id, "mesh_ip": "10.0.0.2", "reachability": "stale"}
    summary = topology.summary(nodes_, relays)
    assert summary["edge_count"] == 20
    assert summary["edges_by_mode"] == {"direct": 17, "relayed": 3}
    assert sum(summary["edges_by_status"].values()) == 20
    assert orjson.loads(b"".join(topology.stream_json("d", "t", []))) == {
        "domain_id": "d", "generated_at": "t", "nodes": [], "edges": []}


def test_streaming_chunks_stay_per_source_node():
    nodes_ = [_node(i) for i in range(1, 201)]
    chunks = list(topology.stream_json("d", "t", nodes_))
    assert len(chunks) == 1 + 200 + 1
    assert max(len(c) for c in chunks[1:-1]) < 200 * 200  # one source's edges, not the whole mesh
