"""A forged event on a real event stream is rejected: frames injected in front of the server's
stream (signed by an attacker under the Domain's key id, or under an unknown key id) change
nothing, while the genuine events around them still converge the mesh."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import rfc8785

from plexsphere.agent.model import key_b64
from plexsphere.crypto import ed25519_generate, ed25519_sign, x25519_keypair
from tests.sim.harness import Fleet

BOGUS_NODE = uuid.UUID("00000000-0000-7000-8000-00000000dead")
BOGUS_KEY = x25519_keypair()[1]


def forged_frames(key_id: str) -> bytes:
    attacker, _ = ed25519_generate()
    frames = []
    for kid in (key_id, "did:plexsphere:domain/dev#k999"):
        envelope = {"id": str(uuid.uuid4()), "type": "peer_added", "scope": "domain:forged", "key_id": kid,
                    "issued_at": "2026-05-27T10:00:00Z",
                    "payload": {"node_id": str(BOGUS_NODE), "mesh_ip": "10.50.0.250",
                                "public_key": key_b64(BOGUS_KEY), "endpoint": "192.0.2.250:51820"}}
        envelope["signature"] = base64.b64encode(ed25519_sign(attacker, rfc8785.dumps(envelope))).decode()
        frames.append(f"event: peer_added\ndata: {json.dumps(envelope)}\n\n")
    return "".join(frames).encode()


class _Prepended(httpx.AsyncByteStream):
    def __init__(self, first: bytes, inner: httpx.AsyncByteStream) -> None:
        self.first, self.inner = first, inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class ForgingTransport(httpx.AsyncBaseTransport):
    """A man in the middle of the event stream (what TLS normally rules out)."""

    def __init__(self, key_id: Callable[[], str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.key_id = key_id
        self.injected = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/events") and response.status_code == 200:
            self.injected += 1
            return httpx.Response(200, headers=response.headers,
                                  stream=_Prepended(forged_frames(self.key_id()), response.stream))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_forged_events_are_rejected_and_genuine_ones_still_apply(stack, tmp_path: Path) -> None:
    project = stack.create_project()
    transports: dict[int, ForgingTransport] = {}

    def transport_for(index: int) -> httpx.AsyncBaseTransport | None:
        if index != 0:
            return None
        transports[0] = ForgingTransport(lambda: fleet.nodes[0].agent.identity.signing_key_id)
        return transports[0]

    fleet = Fleet(stack.url, stack.admin_token, project["id"], tmp_path, transport_factory=transport_for)
    try:
        victim = await fleet.start(0)
        await fleet.join(2)  # their peer_added events reach the victim after the forged frames
        await fleet.wait_converged(30, "joins next to a forging stream")
        assert transports[0].injected >= 1
        agent = victim.agent
        assert agent.rejected_events >= 2
        assert agent.accepted_events >= 2  # the genuine peer_added events were verified and used
        assert BOGUS_NODE not in agent.peers
        assert BOGUS_KEY not in victim.backend.state.peers
    finally:
        await fleet.close()
