"""reconcile(desired, actual) is pure: these tests pin the operation lists it produces."""

from __future__ import annotations

import pytest

from plexsphere.agent.model import (
    ActualState,
    AddAddress,
    CreateInterface,
    DesiredState,
    InterfaceConfig,
    PeerConfig,
    PeerStatus,
    RemoveAddress,
    RemovePeer,
    SetLinkUp,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
)
from plexsphere.agent.reconcile import reconcile
from plexsphere.agent.wireguard.fake import FakeBackend

PRIV = bytes([1]) * 32
PRIV2 = bytes([2]) * 32
K_A, K_B, K_C = bytes([10]) * 32, bytes([11]) * 32, bytes([12]) * 32
PSK = bytes([7]) * 32
IFACE = InterfaceConfig(PRIV, 51820, ("10.50.0.1/24",))


def peer(key: bytes, ip: str, endpoint: str | None = None, psk: bytes | None = PSK) -> PeerConfig:
    return PeerConfig(public_key=key, allowed_ips=(f"{ip}/32",), endpoint=endpoint, preshared_key=psk)


def converged(desired: DesiredState) -> ActualState:
    backend = FakeBackend()
    backend.apply(reconcile(desired, backend.read()))
    return backend.read()


def test_missing_interface_is_created_configured_and_brought_up() -> None:
    desired = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2", "192.0.2.2:51820")})
    assert reconcile(desired, ActualState(exists=False)) == [
        CreateInterface(), SetPrivateKey(PRIV), SetListenPort(51820), AddAddress("10.50.0.1/24"), SetLinkUp(),
        UpsertPeer(peer(K_A, "10.50.0.2", "192.0.2.2:51820")),
    ]


def test_converged_state_needs_no_operations() -> None:
    desired = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2"), K_B: peer(K_B, "10.50.0.3", "192.0.2.3:51820")})
    assert reconcile(desired, converged(desired)) == []


def test_extra_peer_removed_missing_added_changed_updated() -> None:
    old = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2"), K_B: peer(K_B, "10.50.0.3")})
    new_b = peer(K_B, "10.50.0.3", psk=bytes([9]) * 32)
    new = DesiredState(IFACE, {K_B: new_b, K_C: peer(K_C, "10.50.0.4")})
    assert reconcile(new, converged(old)) == [RemovePeer(K_A), UpsertPeer(new_b), UpsertPeer(peer(K_C, "10.50.0.4"))]


def test_rotated_peer_key_removes_old_key_before_new_key_claims_the_address() -> None:
    before = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2")})
    after = DesiredState(IFACE, {K_B: peer(K_B, "10.50.0.2")})
    ops = reconcile(after, converged(before))
    assert ops == [RemovePeer(K_A), UpsertPeer(peer(K_B, "10.50.0.2"))]
    backend = FakeBackend()
    backend.apply(reconcile(before, backend.read()))
    backend.apply(ops)  # the fake refuses two peers sharing an allowed IP, so the order matters
    assert reconcile(after, backend.read()) == []


def test_own_key_rotation_changes_only_the_private_key() -> None:
    desired = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2")})
    rotated = DesiredState(InterfaceConfig(PRIV2, 51820, ("10.50.0.1/24",)), desired.peers)
    assert reconcile(rotated, converged(desired)) == [SetPrivateKey(PRIV2)]


def test_wrong_address_and_port_are_repaired_and_link_brought_up() -> None:
    actual = ActualState(exists=True, up=False, private_key=PRIV, listen_port=4000,
                         addresses=frozenset({"10.60.0.9/24"}))
    assert reconcile(DesiredState(IFACE), actual) == [
        SetListenPort(51820), AddAddress("10.50.0.1/24"), RemoveAddress("10.60.0.9/24"), SetLinkUp(),
    ]


def test_desired_endpoint_set_when_peer_has_none_or_a_stale_one() -> None:
    want = peer(K_A, "10.50.0.2", "192.0.2.2:51820")
    no_endpoint = ActualState(exists=True, up=True, private_key=PRIV, listen_port=51820,
                              addresses=frozenset({"10.50.0.1/24"}), peers={K_A: peer(K_A, "10.50.0.2")})
    assert reconcile(DesiredState(IFACE, {K_A: want}), no_endpoint) == [UpsertPeer(want)]
    quiet = ActualState(**{**no_endpoint.__dict__, "peers": {K_A: peer(K_A, "10.50.0.2", "192.0.2.99:4000")},
                           "status": {K_A: PeerStatus(latest_handshake_age=600.0)}})
    assert reconcile(DesiredState(IFACE, {K_A: want}), quiet) == [UpsertPeer(want)]


def test_roamed_endpoint_with_a_fresh_handshake_is_left_alone() -> None:
    want = peer(K_A, "10.50.0.2", "192.0.2.2:51820")
    roamed = ActualState(exists=True, up=True, private_key=PRIV, listen_port=51820,
                         addresses=frozenset({"10.50.0.1/24"}), peers={K_A: peer(K_A, "10.50.0.2", "192.0.2.99:4000")},
                         status={K_A: PeerStatus(latest_handshake_age=20.0)})
    assert reconcile(DesiredState(IFACE, {K_A: want}), roamed) == []


def test_no_desired_endpoint_never_touches_a_learnt_one() -> None:
    learnt = ActualState(exists=True, up=True, private_key=PRIV, listen_port=51820,
                         addresses=frozenset({"10.50.0.1/24"}), peers={K_A: peer(K_A, "10.50.0.2", "192.0.2.5:1")})
    assert reconcile(DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2")}), learnt) == []


def test_psk_removed_when_desired_has_none() -> None:
    desired = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2")})
    without = DesiredState(IFACE, {K_A: peer(K_A, "10.50.0.2", psk=None)})
    assert reconcile(without, converged(desired)) == [UpsertPeer(peer(K_A, "10.50.0.2", psk=None))]


@pytest.mark.parametrize(("given", "canonical"), [
    ("10.50.0.2", "10.50.0.2/32"), ("10.50.0.2/32", "10.50.0.2/32"), ("FD00::2", "fd00::2/128"),
])
def test_allowed_ips_compare_in_canonical_form(given: str, canonical: str) -> None:
    assert PeerConfig(public_key=K_A, allowed_ips=(given,)).allowed_ips == (canonical,)


def test_reconcile_is_deterministic_over_peer_order() -> None:
    peers = {k: peer(k, f"10.50.0.{i + 2}") for i, k in enumerate([K_C, K_A, K_B])}
    ops1 = reconcile(DesiredState(IFACE, peers), ActualState(exists=False))
    ops2 = reconcile(DesiredState(IFACE, dict(reversed(list(peers.items())))), ActualState(exists=False))
    assert ops1 == ops2
    assert [op.peer.public_key for op in ops1 if isinstance(op, UpsertPeer)] == [K_A, K_B, K_C]
