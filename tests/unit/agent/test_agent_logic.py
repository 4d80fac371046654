"""The control loop's decisions, driven directly against a scripted client and the fake backend
(no server, no network): event handling, PSK gating, and the rotation protocol."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import httpx
import pytest
import rfc8785

from plexsphere.agent.config import AgentConfig
from plexsphere.agent.events import SseFrame
from plexsphere.agent.identity import Identity, IdentityStore, public_key_of
from plexsphere.agent.model import PeerConfig, UpsertPeer, key_b64, key_from_b64
from plexsphere.agent.runtime import Agent
from plexsphere.agent.wireguard.fake import FakeBackend
from plexsphere.client.base import ApiError
from plexsphere.client.node import SealedPsk
from plexsphere.crypto import ed25519_generate, ed25519_sign, seal_for_node, x25519_keypair
from plexsphere.wire.rotation import KeysRotateResponse

KID = "did:plexsphere:domain/dev#k1"
NSK = bytes(range(32))


def problem(status: int, code: str) -> ApiError:
    return ApiError(status, {"status": status, "code": code, "title": code})


class ScriptedClient:
    """Stands in for NodeClient: PSKs per peer, and a script of answers for POST /v1/keys/rotate."""

    def __init__(self) -> None:
        self.psks: dict[uuid.UUID, bytes] = {}
        self.rotate_script: list[object] = []
        self.offered_keys: list[str] = []
        self.pending_on_disk_at_offer: list[bool] = []
        self.store: IdentityStore | None = None

    async def fetch_psk(self, node_id: uuid.UUID, peer_id: uuid.UUID) -> SealedPsk:
        if peer_id not in self.psks:
            raise problem(404, "psk_not_found")
        return SealedPsk(seal_for_node(NSK, self.psks[peer_id]), "psk-software-v1", "1")

    async def rotate_keys(self, request):
        self.offered_keys.append(request.new_public_key)
        assert self.store is not None
        pending = self.store.pending_private_key()
        self.pending_on_disk_at_offer.append(pending is not None and key_b64(public_key_of(pending)) ==
                                             request.new_public_key)
        outcome = self.rotate_script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def signing_key() -> tuple[bytes, bytes]:
    return ed25519_generate()


@pytest.fixture
def setup(tmp_path: Path, signing_key):
    store = IdentityStore(tmp_path)
    store.load_or_create_private_key()
    identity = Identity(
        node_id=uuid.uuid4(), nsk=NSK, env="dev", project_id=uuid.uuid4(), resource_id="n1",
        control_plane_url="http://127.0.0.1:1", mesh_ip="10.50.0.1", domain_mesh_cidr="10.50.0.0/24",
        signing_key_id=KID, signing_keys={KID: base64.b64encode(signing_key[1]).decode()},
    )
    store.save(identity)
    client = ScriptedClient()
    client.store = store
    config = AgentConfig(control_plane_url="http://127.0.0.1:1", state_dir=tmp_path, backend="fake")
    agent = Agent(config, identity, store, client, FakeBackend())  # type: ignore[arg-type]
    agent.retry_initial = 0.001  # retries are exercised, their waiting is not
    agent._first_pull_done = True  # a running agent; the restart test below clears it
    return agent, client, store


def wire_peer(mesh_ip: str, node_id: uuid.UUID | None = None, public_key: bytes | None = None) -> dict:
    return {"node_id": str(node_id or uuid.uuid4()), "mesh_ip": mesh_ip,
            "public_key": key_b64(public_key or x25519_keypair()[1]), "endpoint": "192.0.2.9:51820"}


def frame(private: bytes, event_type: str, payload: dict, seq: int, key_id: str = KID) -> SseFrame:
    envelope = {"id": str(uuid.uuid4()), "type": event_type, "scope": "domain:d", "key_id": key_id,
                "issued_at": "2026-05-27T10:00:00Z", "payload": payload}
    envelope["signature"] = base64.b64encode(ed25519_sign(private, rfc8785.dumps(envelope))).decode()
    return SseFrame(event=event_type, data=json.dumps(envelope), id=str(seq))


async def fetch_pending_psks(agent: Agent) -> None:
    for node_id in agent.peers_waiting_for_psk():
        await agent._fetch_and_store(agent.peers[node_id])


async def test_peer_is_programmed_only_once_its_psk_arrives(setup, signing_key) -> None:
    agent, client, _ = setup
    peer = wire_peer("10.50.0.2")
    agent.on_frame(frame(signing_key[0], "peer_added", peer, 1))
    assert agent.accepted_events == 1 and agent.last_event_id == "1"
    await agent.apply_now()
    assert agent.backend.read().peers == {}  # no PSK yet: not programmed

    await fetch_pending_psks(agent)  # 404: the peer is not anchored yet
    assert agent.peers_waiting_for_psk() == [uuid.UUID(peer["node_id"])]

    client.psks[uuid.UUID(peer["node_id"])] = bytes([5]) * 32
    agent._psk_retry.clear()
    await fetch_pending_psks(agent)
    await agent.apply_now()
    programmed = agent.backend.read().peers[key_from_b64(peer["public_key"])]
    assert programmed.preshared_key == bytes([5]) * 32
    assert programmed.allowed_ips == ("10.50.0.2/32",)
    assert programmed.endpoint == "192.0.2.9:51820"
    assert programmed.persistent_keepalive == 25


async def test_forged_event_is_rejected_and_changes_nothing(setup, signing_key) -> None:
    agent, _, _ = setup
    attacker, _ = ed25519_generate()
    agent.on_frame(frame(attacker, "peer_added", wire_peer("10.50.0.66"), 1))
    agent.on_frame(frame(signing_key[0], "peer_added", wire_peer("10.50.0.67"), 2, key_id="did:unknown#k1"))
    assert agent.rejected_events == 2 and agent.accepted_events == 0
    assert agent.peers == {}
    assert agent._pull_requested.is_set()  # the authenticated state pull decides instead
    assert agent.last_event_id == "2"  # no endless replay of a frame that will never verify


async def test_removed_and_rotated_peers_leave_the_interface(setup, signing_key) -> None:
    agent, client, _ = setup
    gone, rotating = uuid.uuid4(), uuid.uuid4()
    client.psks.update({gone: bytes([1]) * 32, rotating: bytes([2]) * 32})
    agent.on_frame(frame(signing_key[0], "peer_added", wire_peer("10.50.0.2", gone), 1))
    agent.on_frame(frame(signing_key[0], "peer_added", wire_peer("10.50.0.3", rotating), 2))
    await fetch_pending_psks(agent)
    await agent.apply_now()
    assert len(agent.backend.read().peers) == 2

    new_key = x25519_keypair()[1]
    client.psks[rotating] = bytes([3]) * 32  # the server re-issued the edge PSK with the rotation
    agent.on_frame(frame(signing_key[0], "peer_removed", {"node_id": str(gone)}, 3))
    agent.on_frame(frame(signing_key[0], "peer_key_rotated", wire_peer("10.50.0.3", rotating, new_key), 4))
    await agent.apply_now()
    assert agent.backend.read().peers == {}  # old key gone at once; new key waits for its new PSK
    await fetch_pending_psks(agent)
    await agent.apply_now()
    assert list(agent.backend.read().peers) == [new_key]
    assert agent.backend.read().peers[new_key].preshared_key == bytes([3]) * 32


async def test_rotation_persists_the_key_first_retries_with_the_same_key_and_swaps(setup) -> None:
    agent, client, store = setup
    peer_id = uuid.uuid4()
    client.psks[peer_id] = bytes([1]) * 32
    agent._upsert_peer(_peer(wire_peer("10.50.0.2", peer_id)))
    await fetch_pending_psks(agent)
    await agent.apply_now()
    old_public = agent.public_key

    client.psks[peer_id] = bytes([9]) * 32  # what the server derives after our rotation
    receipt = KeysRotateResponse(rotation_id=uuid.uuid4(), kid="psk-software-v1", wrap_key_version=1)
    client.rotate_script = [httpx.ConnectError("network down"), problem(503, "unavailable"), receipt]
    assert await agent.rotate() is True

    assert len(client.offered_keys) == 3 and len(set(client.offered_keys)) == 1
    assert all(client.pending_on_disk_at_offer)
    assert key_b64(agent.public_key) == client.offered_keys[0] != key_b64(old_public)
    assert store.private_key() == agent.private_key and store.pending_private_key() is None
    actual = agent.backend.read()
    assert actual.private_key == agent.private_key
    assert [p.preshared_key for p in actual.peers.values()] == [bytes([9]) * 32]


async def test_rotation_without_a_pending_rotation_keeps_the_key(setup) -> None:
    agent, client, store = setup
    before = agent.private_key
    client.rotate_script = [problem(409, "keys_rotate_no_pending_rotation")]
    assert await agent.rotate() is False
    assert agent.private_key == before == store.private_key()
    assert store.pending_private_key() is None


async def test_interrupted_rotation_offers_the_persisted_key_again(setup) -> None:
    agent, client, store = setup
    pending = store.create_pending_private_key()  # a crash happened after this was written
    client.rotate_script = [KeysRotateResponse(rotation_id=uuid.uuid4(), kid="k", wrap_key_version=1)]
    assert await agent.rotate() is True
    assert client.offered_keys == [key_b64(public_key_of(pending))]
    assert agent.private_key == pending


async def test_rotate_keys_event_for_this_node_requests_a_rotation(setup, signing_key) -> None:
    agent, _, _ = setup
    agent.on_frame(frame(signing_key[0], "rotate_keys", {"node_id": str(uuid.uuid4())}, 1))
    assert not agent._rotate_requested.is_set()  # someone else's rotation
    agent.on_frame(frame(signing_key[0], "rotate_keys", {"node_id": str(agent.node_id)}, 2))
    assert agent._rotate_requested.is_set()


async def test_unknown_event_types_fall_back_to_a_state_pull(setup, signing_key) -> None:
    agent, _, _ = setup
    agent.on_frame(frame(signing_key[0], "policy_updated", {"rules": []}, 1))
    assert agent._pull_requested.is_set() and agent.peers == {}


async def test_learnt_signing_key_is_persisted(setup, signing_key) -> None:
    agent, _, store = setup
    _, next_public = ed25519_generate()
    agent.on_frame(frame(signing_key[0], "signing_key_rotated", {
        "key_id": "did:plexsphere:domain/dev#k2", "public_key": base64.b64encode(next_public).decode()}, 1))
    saved = store.load()
    assert saved is not None and saved.signing_key_id == "did:plexsphere:domain/dev#k2"
    assert KID in saved.signing_keys  # the old key stays trusted for events already in flight


def test_an_address_claimed_twice_goes_to_the_newest_node(setup) -> None:
    agent, _, _ = setup
    agent.psk_supported = False
    older, newer = sorted([uuid.uuid4(), uuid.uuid4()])
    agent._upsert_peer(_peer(wire_peer("10.50.0.2", older)))
    agent._upsert_peer(_peer(wire_peer("10.50.0.2", newer)))
    desired = agent.desired_state()
    assert [key_b64(k) for k in desired.peers] == [agent.peers[newer].public_key]


def _peer(data: dict):
    from plexsphere.agent.runtime import Peer

    peer = Peer.from_wire(data)
    assert peer is not None
    return peer


def snapshot(*peers: dict):
    from plexsphere.wire.mesh import NodeStateSnapshot

    return NodeStateSnapshot.model_validate({
        "peers": list(peers), "policy": None, "bridge": None, "state": None, "reports": None,
        "reachability": {"state": "healthy", "changed_at": "2026-05-27T10:00:00Z"}})


def test_snapshot_replaces_the_peer_table(setup) -> None:
    agent, _, _ = setup
    stays, goes = wire_peer("10.50.0.2"), wire_peer("10.50.0.3")
    agent.apply_snapshot(snapshot(stays, goes))
    agent.apply_snapshot(snapshot(stays), pulled_at_clock=agent._event_clock)
    assert [str(n) for n in agent.peers] == [stays["node_id"]]


def test_an_event_newer_than_an_in_flight_pull_survives_the_stale_snapshot(setup, signing_key) -> None:
    agent, _, _ = setup
    moved = wire_peer("10.50.0.2")
    agent.apply_snapshot(snapshot({**moved, "endpoint": None}))
    clock = agent._event_clock  # the pull is sent now …
    agent.on_frame(frame(signing_key[0], "peer_endpoint_changed", moved, 1))  # … an event lands …
    added_meanwhile = wire_peer("10.50.0.3")
    agent.on_frame(frame(signing_key[0], "peer_added", added_meanwhile, 2))
    agent.apply_snapshot(snapshot({**moved, "endpoint": None}), pulled_at_clock=clock)  # … then the old answer
    assert agent.peers[uuid.UUID(moved["node_id"])].endpoint == "192.0.2.9:51820"
    assert uuid.UUID(added_meanwhile["node_id"]) in agent.peers
    # The next pull is newer than those events and is authoritative again.
    agent.apply_snapshot(snapshot({**moved, "endpoint": None}), pulled_at_clock=agent._event_clock)
    assert agent.peers[uuid.UUID(moved["node_id"])].endpoint is None
    assert uuid.UUID(added_meanwhile["node_id"]) not in agent.peers


async def test_restart_keeps_working_tunnels_until_fresh_state_and_psks_arrive(setup) -> None:
    agent, client, _ = setup
    known = uuid.uuid4()
    client.psks[known] = bytes([4]) * 32
    agent._upsert_peer(_peer(wire_peer("10.50.0.2", known)))
    await fetch_pending_psks(agent)
    await agent.apply_now()
    # A peer added while this agent was down is on the interface from a previous run.
    stranger_key = x25519_keypair()[1]
    agent.backend.apply([UpsertPeer(PeerConfig(public_key=stranger_key, allowed_ips=("10.50.0.3/32",),
                                               preshared_key=bytes([6]) * 32))])
    before = agent.backend.read().peers

    agent.psks.clear()  # a fresh process: no PSKs fetched yet, no state pulled yet
    agent._first_pull_done = False
    applied = len(agent.backend.applied)
    await agent.apply_now()
    assert agent.backend.applied[applied:] == []  # nothing torn down
    assert agent.backend.read().peers == before

    agent.apply_snapshot(snapshot(wire_peer("10.50.0.2", known, key_from_b64(agent.peers[known].public_key))),
                         pulled_at_clock=agent._event_clock)
    agent._first_pull_done = True
    await agent.apply_now()
    # Once the state has landed, the stranger it does not list goes; the known peer stays.
    assert set(agent.backend.read().peers) == {key_from_b64(agent.peers[known].public_key)}


def snapshot_with(heartbeat_interval: str | None):
    from plexsphere.wire.mesh import NodeStateSnapshot

    body = {"peers": [], "reachability": {"state": "healthy", "changed_at": "2026-05-27T10:00:00Z"},
            "policy": None, "bridge": None, "state": None, "reports": None}
    if heartbeat_interval is not None:
        body["heartbeat_interval"] = heartbeat_interval
    return NodeStateSnapshot.model_validate(body)


def test_heartbeats_follow_the_domains_interval_unless_overridden(setup) -> None:
    agent, _, _ = setup
    assert agent.heartbeat_interval == 30.0  # nothing learnt yet: the contract's default
    agent.apply_snapshot(snapshot_with("20s"))
    assert agent.heartbeat_interval == 20.0
    agent.apply_snapshot(snapshot_with(None))  # a server without the field keeps what was learnt
    assert agent.heartbeat_interval == 20.0
    agent.apply_snapshot(snapshot_with("not a duration"))
    assert agent.heartbeat_interval == 20.0
    agent.config = agent.config.model_copy(update={"heartbeat_interval": 5.0})
    assert agent.heartbeat_interval == 5.0  # the operator's flag wins
