"""What a relay reads (agent/relay_messages.py): WireGuard framing and mac1 (checked against the
spec's construction), nftables' view of a receiver index, and hellos that cannot be forged,
replayed or reused by another Node."""

from __future__ import annotations

import hashlib
import os
import struct
import uuid

import pytest

from plexsphere import stun
from plexsphere.agent import relay_messages as rm


def _initiation(responder_public: bytes, sender: int) -> bytes:
    body = bytes([1, 0, 0, 0]) + struct.pack("<I", sender) + os.urandom(32 + 48 + 28)
    key = hashlib.blake2s(b"mac1----" + responder_public).digest()
    return body + hashlib.blake2s(body, key=key, digest_size=16).digest() + bytes(16)


def _response(initiator_public: bytes, sender: int, receiver: int) -> bytes:
    body = bytes([2, 0, 0, 0]) + struct.pack("<II", sender, receiver) + os.urandom(32 + 16)
    key = hashlib.blake2s(b"mac1----" + initiator_public).digest()
    return body + hashlib.blake2s(body, key=key, digest_size=16).digest() + bytes(16)


def test_handshakes_name_their_responder_and_indexes():
    alice, bob = os.urandom(32), os.urandom(32)
    init = _initiation(bob, 0x11223344)
    assert rm.parse_wireguard(init) == rm.WgMessage(rm.INITIATION, 0x11223344, None)
    assert rm.mac1_matches(init, rm.mac1_key(bob)) and not rm.mac1_matches(init, rm.mac1_key(alice))
    resp = _response(alice, 7, 0x11223344)
    assert rm.parse_wireguard(resp) == rm.WgMessage(rm.RESPONSE, 7, 0x11223344)
    assert rm.mac1_matches(resp, rm.mac1_key(alice))
    tampered = bytearray(init)
    tampered[20] ^= 1
    assert not rm.mac1_matches(bytes(tampered), rm.mac1_key(bob))


@pytest.mark.parametrize(("packet", "expected"), [
    (bytes([3, 0, 0, 0]) + struct.pack("<I", 9) + bytes(56), rm.WgMessage(rm.COOKIE_REPLY, None, 9)),
    (bytes([4, 0, 0, 0]) + struct.pack("<I", 9) + bytes(40), rm.WgMessage(rm.TRANSPORT, None, 9)),
    (bytes([4, 0, 0, 0]) + bytes(10), None),  # too short for a transport message
    (bytes([1, 0, 0, 0]) + bytes(100), None),  # an initiation has one size
    (bytes([4, 1, 0, 0]) + bytes(40), None),  # reserved bytes must be zero
    (stun.binding_request(bytes(12)), None),  # STUN is not WireGuard
    (b"", None),
])
def test_framing(packet, expected):
    assert rm.parse_wireguard(packet) == expected


def test_nft_reads_the_wire_bytes_big_endian():
    packet = bytes([4, 0, 0, 0]) + struct.pack("<I", 0x01020304) + bytes(40)
    assert rm.nft_index(rm.parse_wireguard(packet).receiver) == int.from_bytes(packet[4:8], "big") == 0x04030201


def test_hellos_verify_only_when_authentic_fresh_and_newer():
    psk, node = os.urandom(32), uuid.uuid4()
    key = rm.hello_key(psk)
    assert key != psk
    message = rm.hello(stun.transaction_id(), node, 1_000_000, key)
    h = rm.parse_hello(message)
    assert h is not None and h.node_id == node
    assert rm.verify_hello(h, key, 1_000_500, None)
    assert not rm.verify_hello(h, key, 1_000_500, 1_000_000)  # a replay of the last one
    assert not rm.verify_hello(h, key, 1_000_000 + rm.HELLO_WINDOW_MS + 1, None)  # too old
    assert not rm.verify_hello(h, rm.hello_key(os.urandom(32)), 1_000_500, None)  # another edge's key
    forged = rm.Hello(uuid.uuid4(), h.sent_at_ms, h.txid, h.tag)  # someone else's id, same tag
    assert not rm.verify_hello(forged, key, 1_000_500, None)
    assert rm.parse_hello(stun.binding_request(stun.transaction_id())) is None  # plain STUN is no hello
    # A hello is still a binding request: the relay answers it like any STUN question.
    assert stun.message_type(message) == stun.BINDING_REQUEST
