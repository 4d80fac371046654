"""The peer list's pure incremental logic (domain/peer_list.py): every fold of an event must give
the bytes a fresh encoding of the resulting peer set gives."""

from __future__ import annotations

import random
import uuid

import orjson

from plexsphere.domain.peer_list import PeerEntry, PeerProjection
from plexsphere.ids import uuid7


def _key(rng: random.Random) -> str:
    import base64

    return base64.b64encode(rng.randbytes(32)).decode()


def _entry(rng: random.Random, i: int, **kw) -> PeerEntry:
    return PeerEntry(kw.get("node_id", str(uuid7())), f"10.0.{i // 250}.{i % 250 + 1}", _key(rng),
                     kw.get("endpoint"), kw.get("nat_type"), kw.get("is_bridge", False))


def _expected(entries: dict[str, PeerEntry], exclude: str | None = None, relay: str | None = None) -> bytes:
    """The cache-free answer: what node_state used to build per request."""
    out = []
    for node_id in sorted(entries):
        if node_id == exclude:
            continue
        obj = entries[node_id].as_object()
        if relay and not entries[node_id].is_bridge:
            obj["fallback_endpoint"] = relay
        out.append(obj)
    return orjson.dumps(out)


def test_encoding_matches_peer_object_key_order_and_absent_optionals():
    entry = PeerEntry("0190a1b2-0000-7000-8000-000000000001", "10.0.0.1", "A" * 43 + "=", None, None)
    assert entry.encode() == (b'{"node_id":"0190a1b2-0000-7000-8000-000000000001","mesh_ip":"10.0.0.1",'
                              b'"public_key":"' + b"A" * 43 + b'="}')
    moved = PeerEntry(entry.node_id, entry.mesh_ip, entry.public_key, 'h"x\\:1', "symmetric")
    assert orjson.loads(moved.encode("192.0.2.1:51820")) == {
        "node_id": entry.node_id, "mesh_ip": "10.0.0.1", "public_key": "A" * 43 + "=", "endpoint": 'h"x\\:1',
        "nat_type": "symmetric", "fallback_endpoint": "192.0.2.1:51820"}
    assert list(orjson.loads(moved.encode("r:1"))) == ["node_id", "mesh_ip", "public_key", "endpoint", "nat_type",
                                                       "fallback_endpoint"]
    bridge = PeerEntry(entry.node_id, entry.mesh_ip, entry.public_key, None, "full_cone", True)
    assert list(orjson.loads(bridge.encode())) == ["node_id", "mesh_ip", "public_key", "nat_type", "kind"]


def test_exclude_at_every_position_and_empty_lists():
    rng = random.Random(1)
    assert PeerProjection(0).as_json() == b"[]"
    assert PeerProjection(0).as_json(str(uuid.uuid4())) == b"[]"
    for size in (1, 2, 3, 5):
        entries = {e.node_id: e for e in (_entry(rng, i) for i in range(size))}
        projection = PeerProjection(7, entries.values())
        assert projection.as_json() == _expected(entries)
        for node_id in entries:  # first, middle and last position
            assert projection.as_json(node_id) == _expected(entries, node_id)
        assert projection.as_json(str(uuid7())) == _expected(entries)  # not a peer: nothing left out


def test_fallback_for_every_peer_but_bridges():
    rng = random.Random(2)
    relay = "203.0.113.1:3478"
    sym = _entry(rng, 1, nat_type="symmetric", endpoint="198.51.100.1:1")
    bridge = _entry(rng, 2, nat_type="full_cone", endpoint="203.0.113.1:51820", is_bridge=True)
    cone = _entry(rng, 3, nat_type="port_restricted", endpoint="198.51.100.3:1")
    entries = {e.node_id: e for e in (sym, bridge, cone)}
    projection = PeerProjection(1, entries.values())
    by_id = {p["node_id"]: p for p in orjson.loads(projection.as_json(cone.node_id, relay))}
    assert by_id[sym.node_id]["fallback_endpoint"] == relay
    assert "fallback_endpoint" not in by_id[bridge.node_id]  # a bridge is dialled directly
    assert projection.node_ids(bridges=False) == sorted([sym.node_id, cone.node_id])
    for viewer in [*entries, None]:
        assert projection.as_json(viewer, relay) == _expected(entries, viewer, relay)
        assert projection.as_json(viewer) == _expected(entries, viewer)  # register: no relay
    assert projection.as_json(None, "203.0.113.2:3478") == _expected(entries, None, "203.0.113.2:3478")
    projection.apply(2, "peer_endpoint_changed", {"node_id": sym.node_id, "endpoint": "198.51.100.9:9",
                                                  "nat_type": "symmetric"})
    entries[sym.node_id] = PeerEntry(sym.node_id, sym.mesh_ip, sym.public_key, "198.51.100.9:9", "symmetric")
    assert projection.as_json(cone.node_id, relay) == _expected(entries, cone.node_id, relay)  # cache dropped


def test_events_fold_like_the_tables_change():
    rng = random.Random(3)
    a, b = _entry(rng, 1), _entry(rng, 2)
    projection = PeerProjection(10, [a])
    assert projection.apply(11, "peer_added", {**b.as_object()})
    assert projection.as_json() == _expected({a.node_id: a, b.node_id: b})
    new_key = _key(rng)
    # A rotation's payload may carry an endpoint the rotation read (even a stale one): only the key counts.
    assert projection.apply(12, "peer_key_rotated", {**a.as_object(), "public_key": new_key,
                                                     "endpoint": "198.51.100.50:9"})
    a = PeerEntry(a.node_id, a.mesh_ip, new_key, None, None)
    assert projection.apply(13, "peer_endpoint_changed", {**b.as_object(), "endpoint": "198.51.100.2:7",
                                                          "nat_type": "symmetric"})
    b = PeerEntry(b.node_id, b.mesh_ip, b.public_key, "198.51.100.2:7", "symmetric")
    assert projection.as_json(None, "r:1") == _expected({a.node_id: a, b.node_id: b}, None, "r:1")
    # The sweeper's tombstone: no endpoint, NAT type unchanged.
    assert projection.apply(14, "peer_endpoint_changed", {"node_id": b.node_id, "mesh_ip": b.mesh_ip,
                                                          "public_key": b.public_key})
    b = PeerEntry(b.node_id, b.mesh_ip, b.public_key, None, "symmetric")
    assert projection.as_json(a.node_id, "r:1") == _expected({a.node_id: a, b.node_id: b}, a.node_id, "r:1")
    assert projection.apply(15, "peer_removed", {"node_id": a.node_id})
    assert projection.apply(16, "peer_removed", {"node_id": a.node_id})  # twice: a no-op
    assert projection.apply(17, "rotate_keys", {"node_id": b.node_id, "rotation_id": str(uuid7())})
    assert projection.seq == 17
    assert projection.as_json() == _expected({b.node_id: b})


def test_changes_to_nodes_not_in_the_list_change_nothing():
    rng = random.Random(4)
    a, stranger = _entry(rng, 1), _entry(rng, 2)
    projection = PeerProjection(1, [a])
    before = projection.as_json()
    assert projection.apply(2, "peer_key_rotated", stranger.as_object())
    assert projection.apply(3, "peer_endpoint_changed", {**stranger.as_object(), "endpoint": "198.51.100.9:1"})
    assert projection.apply(4, "peer_removed", {"node_id": stranger.node_id})
    assert projection.as_json() == before and projection.seq == 4


def test_unknown_types_and_unreadable_payloads_ask_for_a_rebuild():
    projection = PeerProjection(5, [_entry(random.Random(5), 1)])
    before = projection.as_json()
    assert not projection.apply(6, "peer_renamed", {"node_id": str(uuid7())})
    assert not projection.apply(7, "peer_added", {"node_id": str(uuid7())})  # no mesh_ip / key
    assert projection.as_json() == before and projection.seq == 5


def test_random_sequences_equal_a_fresh_encoding():
    rng = random.Random(6)
    nat_types = [None, "full_cone", "symmetric", "unknown"]
    for _ in range(30):
        truth: dict[str, PeerEntry] = {}
        projection = PeerProjection(0)
        for seq in range(1, 80):
            op = rng.random()
            ids = sorted(truth)
            if op < 0.35 or not ids:
                e = _entry(rng, seq)
                truth[e.node_id] = e
                assert projection.apply(seq, "peer_added", e.as_object())
            elif op < 0.5:
                victim = rng.choice(ids)
                del truth[victim]
                assert projection.apply(seq, "peer_removed", {"node_id": victim})
            elif op < 0.65:
                old = truth[rng.choice(ids)]
                truth[old.node_id] = PeerEntry(old.node_id, old.mesh_ip, _key(rng), old.endpoint, old.nat_type)
                assert projection.apply(seq, "peer_key_rotated", truth[old.node_id].as_object())
            elif op < 0.85:
                old = truth[rng.choice(ids)]
                new = PeerEntry(old.node_id, old.mesh_ip, old.public_key, f"198.51.100.{rng.randrange(1, 9)}:1",
                                rng.choice(nat_types))
                truth[old.node_id] = new
                assert projection.apply(seq, "peer_endpoint_changed", {**new.as_object(), "nat_type": new.nat_type})
            else:
                old = truth[rng.choice(ids)]
                truth[old.node_id] = PeerEntry(old.node_id, old.mesh_ip, old.public_key, None, old.nat_type)
                assert projection.apply(seq, "peer_endpoint_changed", truth[old.node_id].as_object())
            relay = rng.choice([None, "198.51.100.1:1", "203.0.113.9:51820"])
            exclude = rng.choice([*truth, None, str(uuid7())]) if truth else None
            assert projection.as_json(exclude, relay) == _expected(truth, exclude, relay)
            assert projection.as_json() == _expected(truth)
            assert len(projection) == len(truth)


def test_rows_encode_exactly_like_the_peer_object_of_the_tables():
    import ipaddress

    from plexsphere.services import psk
    from plexsphere.services.peer_list import entry_from_row

    rng = random.Random(7)
    rows = [
        {"node_id": uuid7(), "mesh_ip": ipaddress.ip_interface("10.50.0.7/24"), "public_key": rng.randbytes(32),
         "endpoint": None, "nat_type": None, "kind": "node"},
        {"node_id": uuid7(), "mesh_ip": ipaddress.ip_interface("fd00::7/64"), "public_key": rng.randbytes(32),
         "endpoint": "[2001:db8::1]:51820", "nat_type": "symmetric", "kind": "node"},
        {"node_id": uuid7(), "mesh_ip": "10.50.0.9/32", "public_key": rng.randbytes(32),
         "endpoint": 'h"x\\:1', "nat_type": "full_cone", "kind": "bridge"},
    ]
    for row in rows:
        entry = entry_from_row(row)
        assert entry.encode() == orjson.dumps(psk.peer_object(row))
        assert entry.nat_type == row["nat_type"]
    projection = PeerProjection(3, (entry_from_row(r) for r in rows))
    expected = sorted((psk.peer_object(r) for r in rows), key=lambda p: p["node_id"])
    assert projection.as_json() == orjson.dumps(expected)
