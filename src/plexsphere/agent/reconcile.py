"""reconcile(desired, actual) -> operations: the only place that decides what to change on the
interface. Pure: no I/O, no clock, no randomness; the same inputs always give the same list."""

from __future__ import annotations

from plexsphere.agent.model import (
    ActualState,
    AddAddress,
    CreateInterface,
    DesiredState,
    Operation,
    PeerConfig,
    PeerStatus,
    RemoveAddress,
    RemovePeer,
    SetLinkUp,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
)

# WireGuard re-handshakes at least every 2 minutes on a live tunnel, so a handshake younger than this
# proves the peer's current (possibly roamed) endpoint works and is not worth overwriting.
ROAMING_GRACE_SECONDS = 180.0


def reconcile(desired: DesiredState, actual: ActualState) -> list[Operation]:
    ops: list[Operation] = []
    if not actual.exists:
        ops.append(CreateInterface())
        actual = ActualState(exists=True)

    if actual.private_key != desired.interface.private_key:
        ops.append(SetPrivateKey(desired.interface.private_key))
    if actual.listen_port != desired.interface.listen_port:
        ops.append(SetListenPort(desired.interface.listen_port))

    wanted_addresses = set(desired.interface.addresses)
    ops += [AddAddress(a) for a in sorted(wanted_addresses - actual.addresses)]
    ops += [RemoveAddress(a) for a in sorted(actual.addresses - wanted_addresses)]
    if not actual.up:
        ops.append(SetLinkUp())

    # Removals first: a rotated peer's old key and new key must never both claim its allowed IP.
    ops += [RemovePeer(k) for k in sorted(actual.peers.keys() - desired.peers.keys())]
    for key in sorted(desired.peers):
        want = desired.peers[key]
        have = actual.peers.get(key)
        if have is None or not peer_satisfied(want, have, actual.status.get(key)):
            ops.append(UpsertPeer(want))
    return ops


def peer_satisfied(want: PeerConfig, have: PeerConfig, status: PeerStatus | None) -> bool:
    if (want.allowed_ips, want.preshared_key, want.persistent_keepalive) != (
        have.allowed_ips, have.preshared_key, have.persistent_keepalive
    ):
        return False
    if want.endpoint is None or want.endpoint == have.endpoint:
        return True
    # WireGuard roams a peer's endpoint to wherever its authenticated packets come from (NAT); do not
    # fight a working roamed path, but do set the reported endpoint once the path goes quiet.
    age = status.latest_handshake_age if status else None
    return have.endpoint is not None and age is not None and age < ROAMING_GRACE_SECONDS
