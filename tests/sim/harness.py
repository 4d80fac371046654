"""Simulation harness: one real control plane (the `stack` fixture's server process) and many
in-process plexd agents, each with its own state dir, HTTP client, event stream and in-memory
WireGuard table (FakeBackend). No root, no network beyond loopback.

Convergence is judged against the mesh's own invariant, not against agent internals: for every
pair of live agents X ≠ Y, X's table holds exactly one peer per Y, keyed by the public key Y's
interface really uses, allowing Y's mesh IP, dialling the endpoint Y advertised, with the same PSK
that Y holds for X."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from plexsphere.agent.config import AgentConfig
from plexsphere.agent.identity import public_key_of
from plexsphere.agent.model import host_route, key_b64, key_from_b64
from plexsphere.agent.runtime import Agent, run_agent
from plexsphere.agent.wireguard.fake import FakeBackend

log = logging.getLogger("sim")


@dataclass
class SimNode:
    index: int
    config: AgentConfig
    backend: FakeBackend
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    agent: Agent | None = None
    task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return f"sim-{self.index}"

    @property
    def node_id(self) -> uuid.UUID:
        assert self.agent is not None
        return self.agent.node_id

    @property
    def mesh_ip(self) -> str:
        assert self.agent is not None
        return self.agent.identity.mesh_ip

    @property
    def interface_public_key(self) -> bytes | None:
        """The public key the node's (fake) interface really uses."""
        private = self.backend.state.private_key
        return _public_key(private) if private else None


@functools.lru_cache(maxsize=4096)
def _public_key(private: bytes) -> bytes:
    return public_key_of(private)


def advertised_endpoint(index: int) -> str:
    # Distinct, non-loopback documentation addresses: the server refuses loopback endpoints.
    return f"192.0.2.{1 + index % 250}:{51820 + index // 250}"


class Fleet:
    def __init__(self, base_url: str, admin_token: str, project_id: str, root: Path, *,
                 heartbeat_interval: float = 10.0,
                 transport_factory: Callable[[int], httpx.AsyncBaseTransport | None] | None = None) -> None:
        self.base_url = base_url
        self.admin = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {admin_token}"},
                                       timeout=30)
        self.project_id = project_id
        self.root = root
        self.heartbeat_interval = heartbeat_interval
        self.transport_factory = transport_factory
        self.nodes: list[SimNode] = []

    @property
    def live(self) -> list[SimNode]:
        return [n for n in self.nodes if n.agent is not None and not n.stop.is_set()]

    async def issue_token(self) -> str:
        for attempt in range(3):
            try:
                response = await self.admin.post(f"/v1/projects/{self.project_id}/bootstrap-tokens",
                                                 json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
                break
            except httpx.TransportError:
                # A pooled keep-alive connection the server closed just as it was reused; issuing is
                # not idempotent in general, but a request that never reached the server is safe.
                if attempt == 2:
                    raise
        assert response.status_code in (200, 201), response.text
        return response.json()["token"]

    async def start(self, index: int) -> SimNode:
        token = await self.issue_token()
        config = AgentConfig(
            control_plane_url=self.base_url, bootstrap_token=token, resource_id=f"sim-{index}-{uuid.uuid4().hex[:6]}",
            state_dir=self.root / f"node-{index}", interface=f"sim{index}", backend="fake",
            advertise_endpoint=advertised_endpoint(index), heartbeat_interval=self.heartbeat_interval,
            state_pull_interval=30.0, psk_retry_interval=0.5,
        )
        node = SimNode(index=index, config=config, backend=FakeBackend(config.interface))
        self.nodes.append(node)
        await self._run(node)
        return node

    async def restart(self, node: SimNode) -> SimNode:
        """Runs a stopped node again on the same state dir and (fake) interface, without a token."""
        assert node.stop.is_set(), "stop the node first"
        node.config = node.config.model_copy(update={"bootstrap_token": None})
        node.stop = asyncio.Event()
        node.agent = None
        await self._run(node)
        return node

    async def _run(self, node: SimNode) -> None:
        config = node.config
        index = node.index
        started = asyncio.get_running_loop().create_future()

        def on_started(agent: Agent) -> None:
            node.agent = agent
            started.set_result(agent)

        transport = self.transport_factory(index) if self.transport_factory else None
        node.task = asyncio.create_task(run_agent(config, node.backend, node.stop, on_started=on_started,
                                                  transport=transport), name=node.name)
        node.task.add_done_callback(lambda t: started.done() or started.set_exception(
            t.exception() or RuntimeError("agent ended before it started")))
        await started

    async def join(self, count: int, concurrency: int = 20) -> list[SimNode]:
        """Starts `count` agents, at most `concurrency` registering at once."""
        limit = asyncio.Semaphore(concurrency)
        first = len(self.nodes)

        async def one(index: int) -> SimNode:
            async with limit:
                return await self.start(index)

        return list(await asyncio.gather(*(one(first + i) for i in range(count))))

    async def stop(self, node: SimNode) -> None:
        node.stop.set()
        if node.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(node.task, 15)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(n) for n in self.nodes if not n.stop.is_set()))
        await self.admin.aclose()

    def crashed(self) -> list[str]:
        return [f"{n.name}: {n.task.exception()!r}" for n in self.nodes
                if n.task is not None and n.task.done() and not n.stop.is_set() and n.task.exception()]

    def mismatches(self, limit: int = 5) -> list[str]:
        """Violations of the mesh invariant among live agents (empty = converged)."""
        problems: list[str] = []
        live = self.live
        by_key = {n.interface_public_key: n for n in live}
        for node in live:
            table = node.backend.state.peers
            if node.backend.state.private_key != node.agent.private_key:
                problems.append(f"{node.name}: interface key is not the agent's key")
            expected_keys = {n.interface_public_key for n in live if n is not node}
            if set(table) != expected_keys:
                missing = [by_key[k].name for k in expected_keys - set(table)]
                extra = [key_b64(k)[:8] for k in set(table) - expected_keys]
                problems.append(f"{node.name}: missing {missing[:5]}{'…' if len(missing) > 5 else ''} "
                                f"({len(missing)}), extra {extra[:5]} ({len(extra)})")
            for key, peer in table.items():
                other = by_key.get(key)
                if other is None:
                    continue
                if peer.allowed_ips != (host_route(other.mesh_ip),):
                    problems.append(f"{node.name}: {other.name} allowed {peer.allowed_ips}")
                if peer.endpoint != other.config.advertise_endpoint:
                    problems.append(f"{node.name}: {other.name} endpoint {peer.endpoint}")
                reverse = other.backend.state.peers.get(node.interface_public_key)
                if peer.preshared_key is None or reverse is None or reverse.preshared_key != peer.preshared_key:
                    problems.append(f"{node.name}: PSK with {other.name} does not match its side")
            if len(problems) >= limit:
                break
        return problems[:limit]

    async def wait_converged(self, within: float, what: str) -> float:
        """Seconds until the invariant held; fails with the outstanding mismatches otherwise."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            crashed = self.crashed()
            assert not crashed, f"agents crashed: {crashed[:3]}"
            problems = self.mismatches()
            if not problems:
                return loop.time() - start
            if loop.time() - start > within:
                raise AssertionError(f"no convergence after {what} within {within}s: {problems}")
            await asyncio.sleep(0.25)

    async def server_view_mismatches(self) -> list[str]:
        """Cross-check with the control plane: each agent's table against its own GET /state."""
        problems: list[str] = []
        for node in self.live:
            snapshot = await node.agent.client.get_state(node.node_id)
            expected = {key_from_b64(p.public_key): host_route(p.mesh_ip) for p in snapshot.peers}
            actual = {k: p.allowed_ips[0] for k, p in node.backend.state.peers.items()}
            if expected != actual:
                problems.append(f"{node.name}: table differs from the server's state ({len(expected)} vs {len(actual)})")
        return problems
