"""The agent's control loop: registration, then a handful of cooperating asyncio tasks.

    events     SSE stream → verify → update the peer table (reconnects with jittered backoff,
               resumes with Last-Event-ID, asks for a state pull after every (re)connect)
    pull       GET /state on request and every `state_pull_interval` (the safety net)
    heartbeat  POST /heartbeat every `heartbeat_interval`; honours `reconcile` and `rotate_keys`
    endpoint   PUT /endpoint with this node's underlay address, again before it goes stale
    psk        fetches the pairwise PSK of every peer that lacks a valid one (DECISIONS 6)
    rotation   completes a pending key rotation (rotation.md §5)
    apply      desired state → reconcile() → backend; coalesces bursts of changes into one pass

Every task only mutates the in-memory peer/PSK tables and sets `_dirty`; `apply` alone touches the
interface, so the interface is always programmed from one consistent view.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import logging
import random
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

import plexsphere
from plexsphere.agent.config import AgentConfig
from plexsphere.agent.events import (
    EnvelopeRejected,
    EnvelopeVerifier,
    SseFrame,
    SseParser,
    rotated_signing_key,
)
from plexsphere.agent.identity import Identity, IdentityError, IdentityStore, public_key_of
from plexsphere.agent.model import (
    ActualState,
    DesiredState,
    InterfaceConfig,
    PeerConfig,
    host_route,
    key_b64,
    key_from_b64,
)
from plexsphere.agent.reconcile import reconcile
from plexsphere.agent.token import TokenFormatError, parse_bootstrap_token
from plexsphere.agent.wireguard import WireGuardBackend, iproute
from plexsphere.client.base import ApiError
from plexsphere.client.node import NodeClient, retry_after_seconds
from plexsphere.crypto import open_from_server
from plexsphere.timeutil import parse_go_duration
from plexsphere.wire.enrolment import RegisterRequest
from plexsphere.wire.mesh import EndpointRequest, HeartbeatRequest, NodeStateSnapshot
from plexsphere.wire.rotation import KeysRotateRequest

log = logging.getLogger("plexd")
DEFAULT_HEARTBEAT_INTERVAL = 30.0  # the Domain policy default, until the first state pull
T = TypeVar("T")

BINARY_VERSION = f"plexd-v{plexsphere.__version__}"


class FatalAgentError(Exception):
    """Stops plexd with a message for the operator (and a non-zero exit)."""


def rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def agent_checksum() -> str:
    """SHA-256 over the installed plexsphere package (what `binary_checksum` means for a Python
    agent): it changes exactly when the code that runs changes."""
    root = Path(plexsphere.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, httpx.TransportError)


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status} {exc.code or ''}".strip()
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Backoff:
    """Exponential backoff with ±25 % jitter, so a fleet that lost the server together does not
    come back in lockstep."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None) -> None:
        self.initial, self.maximum = initial, maximum
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return delay * self.rng.uniform(0.75, 1.25)

    def reset(self) -> None:
        self.attempt = 0


# -- registration ---------------------------------------------------------------------------------
async def enrol(config: AgentConfig, store: IdentityStore, client: NodeClient, *,
                give_up_after: float = 300.0) -> Identity:
    """The saved identity, or a new one from the bootstrap token. Never registers twice."""
    store.ensure_dir()
    try:
        identity = store.load()
    except IdentityError as exc:
        raise FatalAgentError(f"{exc}; move {store.identity_path} aside to enrol this node again") from None
    if identity is not None:
        if store.private_key() is None:
            raise FatalAgentError(f"{store.key_path} is missing but an identity exists; this node cannot "
                                  "prove its WireGuard key. Remove the node and enrol it again.")
        return identity

    token = config.read_bootstrap_token()
    if not token:
        raise FatalAgentError(f"no saved identity in {store.dir} and no bootstrap token given "
                              "(--bootstrap-token, --bootstrap-token-file or PLEXD_BOOTSTRAP_TOKEN)")
    try:
        token_info = parse_bootstrap_token(token)
    except TokenFormatError as exc:
        raise FatalAgentError(str(exc)) from None
    project_id = config.project_id or str(token_info.project_id)
    private_key = store.load_or_create_private_key()
    request = RegisterRequest(
        project_id=project_id,
        resource_id=config.resource_id,
        requested_resource_id=config.resource_id if config.adopt_resource else None,
        bootstrap_token=token,
        nonce=secrets.token_hex(16),
        public_key=key_b64(public_key_of(private_key)),
    )
    backoff = Backoff(1.0, 60.0)
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            response = await client.register(request)
            break
        except (ApiError, httpx.TransportError) as exc:
            if not is_retryable(exc):
                code = exc.code if isinstance(exc, ApiError) else None
                detail = exc.problem.get("detail") if isinstance(exc, ApiError) else None
                raise FatalAgentError(f"registration refused: {exc.status} {code or 'error'}"
                                      + (f" ({detail})" if detail else "")) from None
            delay = (retry_after_seconds(exc) if isinstance(exc, ApiError) else None) or backoff.next()
            if time.monotonic() + delay > deadline:
                raise FatalAgentError(f"registration did not succeed within {give_up_after:.0f}s "
                                      f"(last error: {describe(exc)})") from None
            log.warning("registration failed (%s); retrying in %.1fs", describe(exc), delay)
            await asyncio.sleep(delay)

    signing_key = base64.b64decode(response.signing_public_key)
    if len(signing_key) != 32:
        raise FatalAgentError(f"the Domain signing key is {len(signing_key)} bytes, expected a raw 32-byte Ed25519 key")
    identity = Identity(
        node_id=response.node_id,
        nsk=base64.b64decode(response.nsk),
        env=token_info.env,
        project_id=uuid.UUID(project_id),
        resource_id=config.resource_id,
        control_plane_url=config.control_plane_url,
        mesh_ip=response.mesh_ip,
        domain_mesh_cidr=response.domain_mesh_cidr,
        signing_key_id=response.signing_key_id,
        signing_keys={response.signing_key_id: response.signing_public_key},
        peer_snapshot=[p.model_dump(mode="json", exclude_none=True) for p in response.peer_snapshot],
    )
    store.save(identity)
    log.info("registered as node %s with mesh IP %s", identity.node_id, identity.mesh_ip)
    return identity


# -- the agent ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    node_id: uuid.UUID
    mesh_ip: str
    public_key: str  # base64, as on the wire
    endpoint: str | None = None
    fallback_endpoint: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Peer | None:
        """None when the object is not a complete peer (the caller then pulls state instead)."""
        try:
            peer = cls(node_id=uuid.UUID(str(data["node_id"])), mesh_ip=str(data["mesh_ip"]),
                       public_key=str(data["public_key"]), endpoint=data.get("endpoint") or None,
                       fallback_endpoint=data.get("fallback_endpoint") or None)
            key_from_b64(peer.public_key)
            host_route(peer.mesh_ip)
        except (KeyError, ValueError, TypeError, binascii.Error):
            return None
        return peer


@dataclass(frozen=True)
class PskEntry:
    peer_public_key: str
    own_public_key: bytes
    psk: bytes

    def __repr__(self) -> str:
        return "PskEntry(<redacted>)"


class Agent:
    def __init__(self, config: AgentConfig, identity: Identity, store: IdentityStore, client: NodeClient,
                 backend: WireGuardBackend, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.domain_heartbeat_interval: float | None = None  # learnt from the state pull
        self.identity = identity
        self.store = store
        self.client = client
        self.backend = backend
        self.rng = rng or random.Random()
        private_key = store.private_key()
        if private_key is None:
            raise FatalAgentError(f"{store.key_path} is missing")
        self.private_key = private_key
        self.peers: dict[uuid.UUID, Peer] = {}
        for raw in identity.peer_snapshot:
            peer = Peer.from_wire(raw)
            if peer and peer.node_id != identity.node_id:
                self.peers[peer.node_id] = peer
        self.psks: dict[uuid.UUID, PskEntry] = {}
        self.psk_supported = True
        self.verifier = EnvelopeVerifier({kid: base64.b64decode(k) for kid, k in identity.signing_keys.items()})
        self.last_event_id: str | None = None
        self.checksum = agent_checksum()
        self.retry_initial = 0.5  # first backoff step (seconds) of rotation retries
        # counters the tests and `plexd status` read
        self.rejected_events = 0
        self.accepted_events = 0
        self.rotations_completed = 0
        self.applies = 0
        self.last_heartbeat_at: str | None = None
        self.last_endpoint_report: str | None = None
        self.removed_from_mesh = False

        self._dirty = asyncio.Event()
        self._pull_requested = asyncio.Event()
        self._rotate_requested = asyncio.Event()
        self._psk_wanted = asyncio.Event()
        self._rotation_idle = asyncio.Event()
        self._rotation_idle.set()
        self._psk_retry: dict[uuid.UUID, tuple[float, float]] = {}  # node -> (not before, last delay)
        self._psk_in_flight: set[uuid.UUID] = set()
        # Orders events against state pulls that were in flight when the events arrived.
        self._event_clock = 0
        self._touched_at: dict[uuid.UUID, int] = {}
        self._psk_limit = asyncio.Semaphore(8)
        self._tasks: list[asyncio.Task] = []
        self._apply_lock = asyncio.Lock()
        self._status_write: asyncio.TimerHandle | None = None
        self._first_pull_done = False  # one read-reconcile-apply pass at a time

    # -- helpers --------------------------------------------------------------------------------
    @property
    def node_id(self) -> uuid.UUID:
        return self.identity.node_id

    @property
    def private_key(self) -> bytes:
        return self._private_key

    @private_key.setter
    def private_key(self, value: bytes) -> None:
        # The public half is derived once per key: it is compared for every peer on every pass.
        self._private_key = value
        self.public_key = public_key_of(value)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.backend.blocking:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    def request_pull(self) -> None:
        self._pull_requested.set()

    def request_rotation(self) -> None:
        self._rotate_requested.set()

    def _valid_psk(self, peer: Peer) -> bytes | None:
        entry = self.psks.get(peer.node_id)
        if entry and entry.peer_public_key == peer.public_key and entry.own_public_key == self.public_key:
            return entry.psk
        return None

    def desired_state(self, actual: ActualState | None = None) -> DesiredState:
        """What the interface should hold now. A peer waits for its PSK before it is programmed:
        half a PSK pair (one side with, one without) would only fail handshakes.

        `actual`, when given, lets working tunnels survive a restart: a known peer keeps the PSK
        already programmed for its exact public key until a fetched one replaces it, and until the
        first state pull has landed, peers on the interface that the agent does not know yet stay."""
        interface = InterfaceConfig(self.private_key, self.config.listen_port, (self.identity.interface_address,))
        claimed: dict[str, Peer] = {}
        # The newest node (UUIDv7 sorts by time) wins a mesh IP that a deleted node held until we
        # hear of the deletion, so one address never has two owners.
        for peer in sorted(self.peers.values(), key=lambda p: p.node_id):
            claimed[host_route(peer.mesh_ip)] = peer
        programmed = actual.peers if actual is not None else {}
        peers: dict[bytes, PeerConfig] = {}
        for route, peer in claimed.items():
            key = key_from_b64(peer.public_key)
            psk = self._valid_psk(peer)
            if psk is None and key in programmed and programmed[key].allowed_ips == (route,):
                psk = programmed[key].preshared_key
            if psk is None and self.psk_supported:
                continue
            peers[key] = PeerConfig(public_key=key, allowed_ips=(route,),
                                    endpoint=peer.endpoint or peer.fallback_endpoint, preshared_key=psk,
                                    persistent_keepalive=self.config.persistent_keepalive)
        if not self._first_pull_done:
            routes = set(claimed)
            for key, existing in programmed.items():
                if key not in peers and not routes & set(existing.allowed_ips):
                    peers[key] = existing
        return DesiredState(interface=interface, peers=peers)

    def peers_waiting_for_psk(self) -> list[uuid.UUID]:
        if not self.psk_supported:
            return []
        return sorted(p.node_id for p in self.peers.values() if self._valid_psk(p) is None)

    # -- lifecycle ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await self.apply_now()  # the interface and its address come up before any network call
        if self.store.pending_private_key() is not None:
            self._rotate_requested.set()  # a rotation was interrupted: finish it with the same key
        self._pull_requested.set()
        self._psk_wanted.set()
        loops = [self._apply_loop, self._pull_loop, self._events_loop, self._heartbeat_loop,
                 self._endpoint_loop, self._psk_loop, self._rotation_loop]
        self._tasks = [asyncio.create_task(loop(), name=f"plexd-{loop.__name__.strip('_')}") for loop in loops]
        stop_wait = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stop_wait, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_wait and task.exception() is not None:
                    raise task.exception()
        finally:
            stop_wait.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, stop_wait, return_exceptions=True)
            self._write_status()
            if self.config.down_on_exit:
                log.info("taking %s down (--down-on-exit)", self.backend.ifname)
                await self._call(self.backend.down)

    # -- apply ----------------------------------------------------------------------------------
    async def apply_now(self) -> None:
        async with self._apply_lock:
            actual = await self._call(self.backend.read)
            ops = reconcile(self.desired_state(actual), actual)
            if ops:
                log.info("applying %d change(s) to %s: %s", len(ops), self.backend.ifname,
                         ", ".join(type(op).__name__ for op in ops[:10]) + (" …" if len(ops) > 10 else ""))
                log.debug("operations: %r", ops)
                await self._call(self.backend.apply, ops)
            self.applies += 1
            self._schedule_status_write()

    async def _apply_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.apply_now()
            except Exception as exc:  # keep the agent alive; the next change or pull retries
                log.error("could not program %s: %s", self.backend.ifname, describe(exc))
                await asyncio.sleep(1.0)
                self._dirty.set()

    def _schedule_status_write(self) -> None:
        # status.json is for humans: at most one write a second, however busy the mesh is.
        if self._status_write is None:
            self._status_write = asyncio.get_running_loop().call_later(1.0, self._write_status)

    def _write_status(self) -> None:
        if self._status_write is not None:
            self._status_write.cancel()
            self._status_write = None
        status = {
            "node_id": str(self.node_id),
            "mesh_ip": self.identity.mesh_ip,
            "domain_mesh_cidr": self.identity.domain_mesh_cidr,
            "interface": self.backend.ifname,
            "backend": self.backend.name,
            "public_key": key_b64(self.public_key),
            "listen_port": self.config.listen_port,
            "updated_at": rfc3339_now(),
            "last_event_id": self.last_event_id,
            "last_heartbeat_at": self.last_heartbeat_at,
            "advertised_endpoint": self.last_endpoint_report,
            "peers": [
                {"node_id": str(p.node_id), "mesh_ip": p.mesh_ip, "public_key": p.public_key,
                 "endpoint": p.endpoint or p.fallback_endpoint, "psk": self._valid_psk(p) is not None}
                for p in sorted(self.peers.values(), key=lambda p: p.node_id)
            ],
        }
        try:
            self.store.write_status(status)
        except OSError as exc:
            log.debug("could not write status: %s", exc)

    # -- peer table -----------------------------------------------------------------------------
    def _upsert_peer(self, peer: Peer) -> None:
        if peer.node_id == self.node_id:
            return
        if self.peers.get(peer.node_id) != peer:
            self.peers[peer.node_id] = peer
            self._dirty.set()
            self._psk_wanted.set()

    def _remove_peer(self, node_id: uuid.UUID) -> None:
        if self.peers.pop(node_id, None) is not None:
            self._dirty.set()
        self.psks.pop(node_id, None)
        self._psk_retry.pop(node_id, None)

    def _touch(self, node_id: uuid.UUID) -> None:
        self._event_clock += 1
        self._touched_at[node_id] = self._event_clock

    def apply_snapshot(self, snapshot: NodeStateSnapshot, pulled_at_clock: int | None = None) -> None:
        """Replaces the peer table with the snapshot, except for peers an event changed after the
        pull was sent (`pulled_at_clock`): such an event is at least as new as the snapshot, because
        events arrive in commit order and every change the snapshot shows is also sent as an event."""
        if pulled_at_clock is not None:
            newer = {n for n, clock in self._touched_at.items() if clock > pulled_at_clock}
            self._touched_at = {n: c for n, c in self._touched_at.items() if n in newer}
        else:
            newer = set()
        fresh: dict[uuid.UUID, Peer] = {}
        for wire_peer in snapshot.peers:
            peer = Peer.from_wire(wire_peer.model_dump(mode="json"))
            if peer is None:
                log.warning("state snapshot carries an unusable peer entry; skipped")
            elif peer.node_id != self.node_id:
                fresh[peer.node_id] = peer
        interval = parse_go_duration(snapshot.heartbeat_interval or "")
        if interval is not None and interval.total_seconds() > 0:
            self.domain_heartbeat_interval = interval.total_seconds()
        for gone in self.peers.keys() - fresh.keys() - newer:
            self._remove_peer(gone)
        for peer in fresh.values():
            if peer.node_id not in newer:
                self._upsert_peer(peer)

    async def _pull_loop(self) -> None:
        backoff = Backoff(1.0, 30.0, self.rng)
        while True:
            try:
                await asyncio.wait_for(self._pull_requested.wait(), timeout=self.config.state_pull_interval)
            except TimeoutError:
                pass
            self._pull_requested.clear()
            clock = self._event_clock
            try:
                snapshot = await self.client.get_state(self.node_id)
            except (ApiError, httpx.HTTPError, ValueError) as exc:  # ValueError: an unparseable snapshot
                delay = backoff.next()
                log.warning("state pull failed (%s); retrying in %.1fs", describe(exc), delay)
                await asyncio.sleep(delay)
                self._pull_requested.set()
                continue
            backoff.reset()
            self.apply_snapshot(snapshot, pulled_at_clock=clock)
            self._first_pull_done = True
            self._dirty.set()  # also repairs drift made behind the agent's back

    # -- events ---------------------------------------------------------------------------------
    async def _events_loop(self) -> None:
        backoff = Backoff(0.5, 30.0, self.rng)
        while True:
            delay: float | None = None
            try:
                async with self.client.events(self.node_id, self.last_event_id) as lines:
                    log.debug("event stream open (resuming after %s)", self.last_event_id)
                    backoff.reset()
                    self._pull_requested.set()  # whatever happened while disconnected
                    parser = SseParser()
                    async for line in lines:
                        frame = parser.feed(line)
                        if frame is not None:
                            self._on_frame_safely(frame)
                log.debug("event stream ended; reconnecting")
            except ApiError as exc:
                delay = retry_after_seconds(exc) or backoff.next()
                log.warning("event stream refused (%s); retrying in %.1fs", describe(exc), delay)
            except httpx.HTTPError as exc:
                delay = backoff.next()
                log.info("event stream lost (%s); reconnecting in %.1fs", describe(exc), delay)
            await asyncio.sleep(delay if delay is not None else backoff.next() * 0.1)

    def _on_frame_safely(self, frame: SseFrame) -> None:
        try:
            self.on_frame(frame)
        except Exception:  # one bad event must not end the stream; the next pull repairs state
            log.exception("handling event %s (%s) failed", frame.id, frame.event)
            self._pull_requested.set()

    def on_frame(self, frame: SseFrame) -> None:
        # The position advances even for a rejected frame, or a resume would replay it forever.
        if frame.id is not None:
            self.last_event_id = frame.id
        try:
            envelope = self.verifier.verify(frame.data)
        except EnvelopeRejected as exc:
            self.rejected_events += 1
            log.warning("rejected event %s (%s): %s", frame.id, frame.event, exc)
            self._pull_requested.set()  # learn the truth from the authenticated state pull instead
            return
        self.accepted_events += 1
        payload = envelope["payload"] if isinstance(envelope["payload"], dict) else {}
        self.handle_event(str(envelope["type"]), payload)

    def handle_event(self, event_type: str, payload: dict[str, Any]) -> None:
        log.debug("event %s", event_type)
        if event_type in ("peer_added", "peer_key_rotated", "peer_endpoint_changed"):
            peer = Peer.from_wire(payload)
            if peer is not None:
                self._touch(peer.node_id)
                self._upsert_peer(peer)
                return
            node_id = _payload_node_id(payload)
            known = self.peers.get(node_id) if node_id else None
            if event_type == "peer_endpoint_changed" and known is not None and "endpoint" in payload:
                self._touch(known.node_id)
                self._upsert_peer(replace(known, endpoint=payload.get("endpoint") or None))
                return
        elif event_type == "peer_removed":
            node_id = _payload_node_id(payload)
            if node_id == self.node_id:
                log.error("this node was deleted from the control plane; removing all peers")
                self.removed_from_mesh = True
                for other in list(self.peers):
                    self._remove_peer(other)
                return
            if node_id is not None:
                self._touch(node_id)
                self._remove_peer(node_id)
                return
        elif event_type == "rotate_keys":
            node_id = _payload_node_id(payload)
            if node_id in (None, self.node_id):
                self._rotate_requested.set()
            return
        elif event_type == "signing_key_rotated":
            learned = rotated_signing_key(payload)
            if learned is not None:
                key_id, raw = learned
                self.verifier.learn_key(key_id, raw)
                self.identity.signing_keys[key_id] = base64.b64encode(raw).decode()
                self.identity.signing_key_id = key_id
                self.store.save(self.identity)
                log.info("trusting new Domain signing key %s", key_id)
        # Anything not fully understood (or fully handled above): the state pull is the authority.
        self._pull_requested.set()

    # -- heartbeat ------------------------------------------------------------------------------
    async def heartbeat_once(self) -> None:
        response = await self.client.heartbeat(self.node_id, HeartbeatRequest(
            client_now=rfc3339_now(), binary_checksum=self.checksum, binary_version=BINARY_VERSION,
            nat_summary={}))
        self.last_heartbeat_at = response.accepted_at.isoformat()
        if response.reconcile:
            self._pull_requested.set()
        if response.rotate_keys:
            self._rotate_requested.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.heartbeat_once()
            except (ApiError, httpx.HTTPError) as exc:
                log.warning("heartbeat failed: %s", describe(exc))
            except Exception as exc:  # e.g. an unparseable answer; the next beat tries again
                log.error("heartbeat failed: %s", describe(exc))
            # Jitter keeps a fleet started together from heartbeating in lockstep.
            await asyncio.sleep(self.heartbeat_interval * self.rng.uniform(0.9, 1.1))

    @property
    def heartbeat_interval(self) -> float:
        """The operator's override, else the Domain's cadence, else the contract's default."""
        return self.config.heartbeat_interval or self.domain_heartbeat_interval or DEFAULT_HEARTBEAT_INTERVAL

    # -- endpoint -------------------------------------------------------------------------------
    def advertise_endpoint(self) -> str | None:
        if self.config.advertise_endpoint:
            return self.config.advertise_endpoint
        address = iproute.default_route_address(4)
        return f"{address}:{self.config.listen_port}" if address else None

    async def _endpoint_loop(self) -> None:
        while True:
            delay = self.config.endpoint_report_interval
            endpoint = self.config.advertise_endpoint or await asyncio.to_thread(self.advertise_endpoint)
            if endpoint is None:
                log.warning("no underlay address to advertise (no default route); set advertise_endpoint")
            else:
                try:
                    response = await self.client.report_endpoint(self.node_id, EndpointRequest(
                        endpoint=endpoint, nat_type="unknown", reported_at=rfc3339_now()))
                    self.last_endpoint_report = endpoint
                    lifetime = (response.stale_after - response.accepted_at).total_seconds()
                    delay = max(1.0, min(delay, lifetime / 2))
                except ApiError as exc:
                    if exc.code == "endpoint_peer_not_found":
                        delay = 2.0  # registered but not yet anchored as a peer: soon
                    else:
                        log.warning("endpoint report refused: %s", describe(exc))
                except (httpx.HTTPError, ValueError) as exc:
                    log.warning("endpoint report failed: %s", describe(exc))
                    delay = min(delay, 5.0)
            await asyncio.sleep(delay)

    # -- PSKs -----------------------------------------------------------------------------------
    async def fetch_psk(self, peer: Peer, own_public_key: bytes) -> PskEntry | None:
        """The edge PSK for `peer`, or None while it is not available yet (peer not anchored)."""
        try:
            async with self._psk_limit:
                sealed = await self.client.fetch_psk(self.node_id, peer.node_id)
        except ApiError as exc:
            if exc.status == 501:
                if self.psk_supported:
                    log.warning("the control plane does not provide PSKs; peers are programmed without")
                self.psk_supported = False
                self._dirty.set()
                return None
            if exc.status in (404, 409) or is_retryable(exc):
                return None
            raise
        psk = open_from_server(self.identity.nsk, sealed.sealed)
        if len(psk) != 32:
            raise ValueError("the PSK envelope did not hold 32 bytes")
        return PskEntry(peer_public_key=peer.public_key, own_public_key=own_public_key, psk=psk)

    async def _fetch_and_store(self, peer: Peer) -> None:
        own = self.public_key
        try:
            entry = await self.fetch_psk(peer, own)
        except httpx.TransportError as exc:
            log.debug("PSK fetch for %s failed: %s", peer.node_id, describe(exc))
            entry = None
        except Exception as exc:
            log.warning("PSK for peer %s unusable: %s", peer.node_id, describe(exc))
            entry = None
        finally:
            self._psk_in_flight.discard(peer.node_id)
        if entry is None:
            _, last = self._psk_retry.get(peer.node_id, (0.0, 0.0))
            wait = min(30.0, max(self.config.psk_retry_interval, last * 2))
            self._psk_retry[peer.node_id] = (time.monotonic() + wait, wait)
            asyncio.get_running_loop().call_later(wait, self._psk_wanted.set)
            return
        self._psk_retry.pop(peer.node_id, None)
        current = self.peers.get(peer.node_id)
        if current is not None and current.public_key == peer.public_key and own == self.public_key:
            self.psks[peer.node_id] = entry
            self._dirty.set()
        self._psk_wanted.set()  # the peer may have changed meanwhile: look again

    async def _psk_loop(self) -> None:
        while True:
            await self._psk_wanted.wait()
            self._psk_wanted.clear()
            await self._rotation_idle.wait()  # a rotation fetches its own PSKs
            now = time.monotonic()
            for node_id in self.peers_waiting_for_psk():
                if node_id in self._psk_in_flight or self._psk_retry.get(node_id, (0.0, 0.0))[0] > now:
                    continue
                self._psk_in_flight.add(node_id)
                asyncio.create_task(self._fetch_and_store(self.peers[node_id]))

    # -- rotation -------------------------------------------------------------------------------
    async def _rotation_loop(self) -> None:
        while True:
            await self._rotate_requested.wait()
            self._rotate_requested.clear()
            try:
                await self.rotate()
            except Exception as exc:
                log.error("key rotation failed: %s", describe(exc))

    async def rotate(self) -> bool:
        """Completes a pending rotation (rotation.md §5). True when the key changed."""
        pending = self.store.pending_private_key()
        if pending is None:
            # Persisted before it is offered: after a crash the same key is offered again, which the
            # control plane treats idempotently.
            pending = self.store.create_pending_private_key()
        new_public = public_key_of(pending)
        if new_public == self.public_key:
            self.store.discard_pending_private_key()
            return False
        request = KeysRotateRequest(new_public_key=key_b64(new_public))
        backoff = Backoff(self.retry_initial, 10.0, self.rng)
        for _attempt in range(12):
            try:
                receipt = await self.client.rotate_keys(request)
                break
            except (ApiError, httpx.TransportError) as exc:
                if isinstance(exc, ApiError) and exc.code == "keys_rotate_public_key_unchanged":
                    receipt = None  # the control plane already holds this key
                    break
                if isinstance(exc, ApiError) and exc.code == "keys_rotate_no_pending_rotation":
                    log.debug("no rotation pending; discarding the prepared key")
                    self.store.discard_pending_private_key()
                    return False
                if not is_retryable(exc):
                    log.error("key rotation refused: %s (keeping the prepared key for the next attempt)",
                              describe(exc))
                    return False
                await asyncio.sleep(retry_after_seconds(exc) if isinstance(exc, ApiError) and
                                    retry_after_seconds(exc) else backoff.next())
        else:
            log.error("key rotation did not complete; will retry on the next trigger")
            return False

        # The control plane switched keys and re-issued our PSKs. Fetch the new PSKs first, then swap
        # key and PSKs in one apply, so the window with a half-updated interface is as short as can be.
        self._rotation_idle.clear()
        try:
            peers = list(self.peers.values())
            results = await asyncio.gather(*(self.fetch_psk(p, new_public) for p in peers),
                                           return_exceptions=True)
            self.store.promote_pending_private_key()
            self.private_key = pending
            self.psks = {p.node_id: r for p, r in zip(peers, results, strict=True) if isinstance(r, PskEntry)}
            self._psk_retry.clear()
            self.rotations_completed += 1
            log.info("mesh key rotated%s; new public key %s",
                     f" (rotation {receipt.rotation_id})" if receipt else "", key_b64(new_public))
            await self.apply_now()
        finally:
            self._rotation_idle.set()
            self._psk_wanted.set()
            self._dirty.set()
        return True


def _payload_node_id(payload: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(payload["node_id"]))
    except (KeyError, ValueError):
        return None


async def run_agent(config: AgentConfig, backend: WireGuardBackend, stop: asyncio.Event,
                    *, on_started: Callable[[Agent], Awaitable[None] | None] | None = None,
                    transport: httpx.AsyncBaseTransport | None = None) -> Agent:
    """Registers (or loads the identity), then runs until `stop` is set. `on_started` sees the
    Agent before its loops start; `transport` replaces the HTTP transport (tests)."""
    store = IdentityStore(config.state_dir)
    client = NodeClient(config.control_plane_url, transport=transport)
    try:
        identity = await enrol(config, store, client)
        client.set_bearer(identity.bearer)
        agent = Agent(config, identity, store, client, backend)
        if on_started is not None:
            result = on_started(agent)
            if asyncio.iscoroutine(result):
                await result
        await agent.run(stop)
        return agent
    finally:
        await client.aclose()
