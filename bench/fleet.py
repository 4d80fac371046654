"""A fleet of sim agents for the fan-out, churn and rotation scenarios: one real SSE connection per
prefilled Node to the real server, received by bench.swarm (stamped on arrival), and then — off
the clock — each agent's captured bytes are parsed, verified and applied with the agent's own code
(plexsphere.agent.events.SseParser + EnvelopeVerifier, plexsphere.agent.runtime.Peer.from_wire)
into that agent's peer table. What a real agent on its own machine would add to the arrival time
is its own verify + apply cost, which is measured per agent and added to its arrival.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field

from bench.harness import BenchNode, Stack
from bench.swarm import StreamConn, Swarm, Target, dechunk


@dataclass
class SimAgent:
    node: BenchNode
    conn: StreamConn
    peers: dict[uuid.UUID, object] = field(default_factory=dict)
    rejected: int = 0
    verifier: object = None


def signing_keys(stack: Stack) -> dict[str, bytes]:
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT key_id, public_key FROM plexsphere.domain_signing_keys WHERE domain_id = %s",
                            (stack.domain_id,)).fetchall()
    return {key_id: bytes(public) for key_id, public in rows}


class Fleet:
    def __init__(self, stack: Stack, nodes: list[BenchNode]) -> None:
        host, port = stack.url.split("//", 1)[1].split(":")
        self.stack = stack
        self.swarm = Swarm(host, int(port))
        self.nodes = nodes
        self.agents: list[SimAgent] = []
        self.keys = signing_keys(stack)

    async def connect(self, concurrency: int = 64) -> float:
        targets = [Target(f"/v1/nodes/{n.id}/events", {"Authorization": f"Bearer {n.bearer()}"}) for n in self.nodes]
        took = await self.swarm.connect(targets, concurrency=concurrency)
        from plexsphere.agent.events import EnvelopeVerifier

        self.agents = [SimAgent(n, c, verifier=EnvelopeVerifier(dict(self.keys)))
                       for n, c in zip(self.nodes, self.swarm.conns, strict=True)]
        return took

    def apply_captured(self, event_type: str) -> tuple[list[float], int, int]:
        """Parses, verifies and applies every agent's captured frames of `event_type`. Returns
        (per-agent cost in seconds, frames applied, frames rejected)."""
        from plexsphere.agent.events import EnvelopeRejected, SseParser
        from plexsphere.agent.runtime import Peer

        costs, applied, rejected = [], 0, 0
        for agent in self.agents:
            raw = b"".join(agent.conn.captured)
            t0 = time.perf_counter()
            parser = SseParser()
            for line in dechunk(raw).decode().split("\n"):
                frame = parser.feed(line)
                if frame is None or frame.event != event_type:
                    continue
                try:
                    envelope = agent.verifier.verify(frame.data)
                except EnvelopeRejected:
                    agent.rejected += 1
                    rejected += 1
                    continue
                peer = Peer.from_wire(envelope["payload"])
                if peer is not None and peer.node_id != agent.node.id:
                    agent.peers[peer.node_id] = peer
                    applied += 1
            costs.append(time.perf_counter() - t0)
            agent.conn.captured = []
        return costs, applied, rejected

    def close(self) -> None:
        self.swarm.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
