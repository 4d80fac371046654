"""An in-memory WireGuard device for tests and the simulation: applies operations to a table with
the kernel's semantics (upsert replaces allowed IPs, an endpoint is sticky, removal by key), and
checks the invariants a real device enforces, so a wrong operation list fails loudly here too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from plexsphere.agent.model import (
    ActualState,
    AddAddress,
    CreateInterface,
    Operation,
    PeerConfig,
    RemoveAddress,
    RemovePeer,
    SetLinkUp,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
)
from plexsphere.agent.wireguard.base import WireGuardBackend, WireGuardError


class FakeBackend(WireGuardBackend):
    name = "fake"
    blocking = False

    def __init__(self, ifname: str = "fake0") -> None:
        super().__init__(ifname)
        self.state = ActualState(exists=False)
        self.applied: list[Operation] = []  # every operation ever applied, for assertions

    def read(self) -> ActualState:
        return replace(self.state, peers=dict(self.state.peers), status=dict(self.state.status))

    def apply(self, ops: Sequence[Operation]) -> None:
        state = self.read()
        for op in ops:
            if isinstance(op, CreateInterface):
                if state.exists:
                    raise WireGuardError(f"{self.ifname} already exists")
                state = ActualState(exists=True)
                continue
            if not state.exists:
                raise WireGuardError(f"{self.ifname} does not exist")
            if isinstance(op, SetPrivateKey):
                state = replace(state, private_key=op.private_key)
            elif isinstance(op, SetListenPort):
                state = replace(state, listen_port=op.port)
            elif isinstance(op, AddAddress):
                state = replace(state, addresses=state.addresses | {op.cidr})
            elif isinstance(op, RemoveAddress):
                state = replace(state, addresses=state.addresses - {op.cidr})
            elif isinstance(op, SetLinkUp):
                state = replace(state, up=True)
            elif isinstance(op, RemovePeer):
                state.peers.pop(op.public_key, None)
                state.status.pop(op.public_key, None)
            elif isinstance(op, UpsertPeer):
                self._upsert(state, op.peer)
        self.applied.extend(ops)
        self.state = state

    @staticmethod
    def _upsert(state: ActualState, peer: PeerConfig) -> None:
        # A real device moves an allowed IP to the peer that claims it last; two peers sharing one
        # is always an agent bug, so the fake refuses it instead.
        for other in state.peers.values():
            if other.public_key != peer.public_key and set(other.allowed_ips) & set(peer.allowed_ips):
                raise WireGuardError("allowed IP already claimed by another peer")
        previous = state.peers.get(peer.public_key)
        endpoint = peer.endpoint or (previous.endpoint if previous else None)
        state.peers[peer.public_key] = replace(peer, endpoint=endpoint)

    def down(self) -> None:
        self.state = ActualState(exists=False)
