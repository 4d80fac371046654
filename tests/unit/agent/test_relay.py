"""The relay's userspace half (agent/relay.py, kernel splice off): who gets bound where, which
handshake goes to whom, what is handed to the kernel, and what is dropped."""

from __future__ import annotations

import os
import struct
import uuid

from tests.unit.agent.test_relay_messages import _initiation, _response

from plexsphere import stun
from plexsphere.agent import relay_messages as rm
from plexsphere.agent.relay import RelayServer, elements_script, ruleset


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data: bytes, addr: tuple) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass


A, B, C = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
ADDR = {A: ("198.51.100.10", 40001), B: ("198.51.100.20", 51820), C: ("198.51.100.30", 51820)}


def _relay():
    keys = {n: (os.urandom(32), rm.hello_key(os.urandom(32))) for n in (A, B, C)}
    now = [1_000_000]
    relay = RelayServer(3478, "203.0.113.1", kernel=False, wall_ms=lambda: now[0])
    relay.connection_made(FakeTransport())
    relay.assign(keys)
    return relay, keys, now


def _hello(relay, keys, node, at_ms, source=None):
    relay.datagram_received(rm.hello(stun.transaction_id(), node, at_ms, keys[node][1]), source or ADDR[node])


def test_hellos_bind_nodes_and_are_answered_like_stun():
    relay, keys, now = _relay()
    _hello(relay, keys, A, now[0])
    assert relay.nodes[A].binding == ADDR[A]
    answer, to = relay.transport.sent[-1]
    assert to == ADDR[A] and stun.mapped_address(answer, stun.txid_of(answer)) == ADDR[A]
    # A forged hello (B's id under A's key) and a replay from elsewhere bind nothing.
    relay.datagram_received(rm.hello(stun.transaction_id(), B, now[0], keys[A][1]), ("192.0.2.66", 1))
    assert relay.nodes[B].binding is None
    replay = rm.hello(stun.transaction_id(), A, now[0] - 1, keys[A][1])
    relay.datagram_received(replay, ("192.0.2.66", 1))
    assert relay.nodes[A].binding == ADDR[A] and relay.stats["bad_hellos"] == 2
    # The Node's NAT rebinds: the next hello moves it.
    _hello(relay, keys, A, now[0] + 10, ("198.51.100.10", 40999))
    assert relay.nodes[A].binding == ("198.51.100.10", 40999)
    assert ADDR[A] not in relay.by_binding


def test_handshakes_reach_the_responder_and_the_session_goes_to_the_kernel():
    relay, keys, now = _relay()
    for n in (A, B, C):
        _hello(relay, keys, n, now[0])
    relay.transport.sent.clear()
    init = _initiation(keys[B][0], 0xAAAA)
    relay.datagram_received(init, ADDR[A])
    assert relay.transport.sent == [(init, ADDR[B])]  # mac1 said: for B
    resp = _response(keys[A][0], 0xBBBB, 0xAAAA)
    relay.datagram_received(resp, ADDR[B])
    assert relay.transport.sent[-1] == (resp, ADDR[A])
    assert relay.installed == {(ADDR[A], 0xBBBB): ADDR[B], (ADDR[B], 0xAAAA): ADDR[A]}
    assert relay.pair_handshakes == {f"{A}|{B}": 1}
    # What the kernel missed is forwarded here by the same session.
    transport = bytes([4, 0, 0, 0]) + struct.pack("<I", 0xBBBB) + bytes(40)
    relay.datagram_received(transport, ADDR[A])
    assert relay.transport.sent[-1] == (transport, ADDR[B])
    script = elements_script(relay.installed)
    assert f"{ADDR[A][0]} . {ADDR[A][1]} . {rm.nft_index(0xBBBB):#x} : {ADDR[B][0]}" in script
    assert "flush map" in script and "3478" in ruleset(3478, "203.0.113.1")


def test_strangers_and_unknown_responders_are_dropped():
    relay, keys, now = _relay()
    _hello(relay, keys, A, now[0])
    relay.transport.sent.clear()
    relay.datagram_received(_initiation(keys[B][0], 1), ("192.0.2.66", 5))  # not bound: a stranger
    relay.datagram_received(_initiation(keys[B][0], 1), ADDR[A])  # B has not said hello yet
    relay.datagram_received(_initiation(os.urandom(32), 1), ADDR[A])  # for nobody we serve
    relay.datagram_received(_response(keys[A][0], 2, 999), ADDR[A])  # answers no initiation
    assert relay.transport.sent == [] and relay.stats["dropped"] == 4
    relay.assign({B: keys[B], C: keys[C]})  # A is no longer assigned: unbound at once
    assert ADDR[A] not in relay.by_binding
