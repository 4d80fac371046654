"""NAT discovery rules (plexsphere/stun.py, agent/nat.py): the STUN messages round-trip, malformed ones are refused, and
the classification into the contract's nat_type follows what the observers saw."""

from __future__ import annotations

import struct

import pytest

from plexsphere import stun
from plexsphere.agent import nat
from plexsphere.agent.nat import Observation, classify

NAT_TYPES = {"full_cone", "restricted", "port_restricted", "symmetric", "unknown"}


@pytest.mark.parametrize(("ip", "port"), [("198.51.100.7", 51820), ("10.0.0.1", 1), ("2001:db8::1", 65535)])
def test_binding_answers_round_trip(ip, port):
    txid = stun.transaction_id()
    answer = stun.binding_success(txid, ip, port)
    assert stun.mapped_address(answer, txid) == (ip, port)
    assert stun.mapped_address(answer, stun.transaction_id()) is None  # someone else's answer
    assert stun.mapped_address(stun.binding_request(txid), txid) is None  # a request is no answer


def test_requests_carry_change_port_and_extra_attributes():
    txid = stun.transaction_id()
    plain, changed = stun.binding_request(txid), stun.binding_request(txid, change_port=True)
    assert stun.message_type(plain) == stun.BINDING_REQUEST and stun.txid_of(plain) == txid
    assert not stun.wants_change_port(plain) and stun.wants_change_port(changed)
    extra = stun.attribute(0x8A01, b"abc")
    attrs = stun.parse_attributes(stun.binding_request(txid, extra=extra))
    assert attrs == {0x8A01: b"abc"}
    assert struct.unpack_from("!I", plain, 4)[0] == stun.MAGIC_COOKIE  # what tells STUN from WireGuard


def test_plain_mapped_address_is_read_too():
    txid = stun.transaction_id()
    value = struct.pack("!BBH", 0, 1, 4000) + bytes([203, 0, 113, 5])
    attrs = stun.attribute(stun.ATTR_MAPPED_ADDRESS, value)
    message = stun.HEADER.pack(stun.BINDING_SUCCESS, len(attrs), stun.MAGIC_COOKIE, txid) + attrs
    assert stun.mapped_address(message, txid) == ("203.0.113.5", 4000)


@pytest.mark.parametrize("message", [
    b"", b"\x01\x01", b"\x04\x00\x00\x00" + bytes(28),  # a WireGuard transport message is not STUN
    stun.HEADER.pack(stun.BINDING_SUCCESS, 8, 0xDEADBEEF, bytes(12)) + bytes(8),  # wrong cookie
    stun.HEADER.pack(stun.BINDING_SUCCESS, 12, stun.MAGIC_COOKIE, bytes(12)) + bytes(8),  # truncated
    stun.HEADER.pack(stun.BINDING_SUCCESS, 8, stun.MAGIC_COOKIE, bytes(12)) + struct.pack("!HH", 0x20, 40) + bytes(4),
])
def test_malformed_messages_are_refused(message):
    assert stun.mapped_address(message, bytes(12)) is None


def _obs(*seen) -> list[Observation]:
    return [Observation(f"192.0.2.{i}", m) for i, m in enumerate(seen, 1)]


M, M2, LOCAL = ("198.51.100.9", 51820), ("198.51.100.9", 40001), ("10.0.0.2", 51820)


@pytest.mark.parametrize(("local", "seen", "change_port", "expected"), [
    (LOCAL, (), None, "unknown"),
    (LOCAL, (M,), True, "unknown"),  # one observer: nothing to compare
    (LOCAL, (M, None), True, "unknown"),
    (LOCAL, (M, M2), True, "symmetric"),  # a new mapping per destination
    (LOCAL, (M, M2), False, "symmetric"),
    (LOCAL, (M, M), True, "restricted"),
    (LOCAL, (M, M), False, "port_restricted"),
    (LOCAL, (M, M), None, "unknown"),
    (M, (M, M), True, "full_cone"),  # no NAT and nothing filters
    (M, (M, M), False, "port_restricted"),  # no NAT but a stateful firewall
    (None, (M, M, M2), False, "symmetric"),
])
def test_classification(local, seen, change_port, expected):
    got = classify(local, _obs(*seen), change_port)
    assert got == expected and got in NAT_TYPES  # never `none`


def test_the_same_observer_twice_is_one_observer():
    same = [Observation("192.0.2.1", M), Observation("192.0.2.1", M2)]
    assert classify(LOCAL, same, True) == "unknown"


def test_reported_endpoint_is_what_most_observers_saw():
    assert nat.consensus_endpoint(_obs(M, M2, M)) == "198.51.100.9:51820"
    assert nat.consensus_endpoint(_obs(M2, M)) == "198.51.100.9:40001"  # tie: the first
    assert nat.consensus_endpoint(_obs(None, None)) is None
    assert nat.consensus_endpoint(_obs(("2001:db8::9", 7))) == "[2001:db8::9]:7"

