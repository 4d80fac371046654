"""The node-facing API as plexd speaks it: async, typed with the wire models, one method per
operation. Authentication is the NSK bearer (DECISIONS 1) except for `register`, where the bootstrap
token in the body is the credential.

Errors are `ApiError` (non-2xx, with the problem+json body) or httpx's transport errors."""

from __future__ import annotations

import functools
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from plexsphere import __version__
from plexsphere.client.base import ApiError, problem_from
from plexsphere.wire.enrolment import RegisterRequest, RegisterResponse
from plexsphere.wire.mesh import (
    EndpointRequest,
    EndpointResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    NodeStateSnapshot,
)
from plexsphere.wire.rotation import KeysRotateRequest, KeysRotateResponse

USER_AGENT = f"plexd/{__version__}"
# Reads on the event stream wait this long for a byte; the server's keep-alive comes every 25 s,
# so silence this long means the connection is dead.
SSE_IDLE_TIMEOUT = 90.0


@dataclass(frozen=True)
class SealedPsk:
    sealed: bytes  # 12-byte nonce ‖ AES-256-GCM(psk ‖ tag) under the node's NSK
    kid: str | None
    epoch: str | None

    def __repr__(self) -> str:
        return f"SealedPsk(kid={self.kid}, epoch={self.epoch})"


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise ApiError(response.status_code, problem_from(response), response.headers)
    return response


def retry_after_seconds(error: ApiError) -> float | None:
    value = error.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s; a process running many clients (the simulation) shares one."""
    return httpx.create_ssl_context()


class NodeClient:
    def __init__(self, base_url: str, bearer: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 limits: httpx.Limits | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._bearer = bearer
        self.http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, verify=_tls_context(),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=limits or httpx.Limits(max_connections=32, max_keepalive_connections=8),
        )

    def set_bearer(self, bearer: str) -> None:
        self._bearer = bearer

    def _auth(self) -> dict[str, str]:
        if not self._bearer:
            raise RuntimeError("this call needs the node's NSK bearer")
        return {"Authorization": f"Bearer {self._bearer}"}

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- enrolment ------------------------------------------------------------------------------
    async def register(self, request: RegisterRequest, *, bridge: bool = False) -> RegisterResponse:
        """`bridge`: redeem a bridge token at the bridge seam (docs/nat.md) instead of /v1/register."""
        path = "/v1/bridges/register" if bridge else "/v1/register"
        response = await self.http.post(path, json=request.model_dump(mode="json", exclude_none=True))
        return RegisterResponse.model_validate(_check(response).json())

    # -- mesh -----------------------------------------------------------------------------------
    async def get_state(self, node_id: uuid.UUID) -> NodeStateSnapshot:
        response = await self.http.get(f"/v1/nodes/{node_id}/state", headers=self._auth())
        return NodeStateSnapshot.model_validate(_check(response).json())

    async def heartbeat(self, node_id: uuid.UUID, request: HeartbeatRequest) -> HeartbeatResponse:
        response = await self.http.post(f"/v1/nodes/{node_id}/heartbeat", headers=self._auth(),
                                        json=request.model_dump(mode="json"))
        return HeartbeatResponse.model_validate(_check(response).json())

    async def report_endpoint(self, node_id: uuid.UUID, request: EndpointRequest) -> EndpointResponse:
        response = await self.http.put(f"/v1/nodes/{node_id}/endpoint", headers=self._auth(),
                                       json=request.model_dump(mode="json"))
        return EndpointResponse.model_validate(_check(response).json())

    async def fetch_psk(self, node_id: uuid.UUID, peer_node_id: uuid.UUID) -> SealedPsk:
        response = await self.http.get(f"/v1/nodes/{node_id}/peers/{peer_node_id}/psk",
                                       headers={**self._auth(), "Accept": "application/octet-stream"})
        _check(response)
        return SealedPsk(sealed=response.content, kid=response.headers.get("X-Plexsphere-PSK-KID"),
                         epoch=response.headers.get("X-Plexsphere-PSK-Epoch"))

    # -- rotation -------------------------------------------------------------------------------
    async def rotate_keys(self, request: KeysRotateRequest) -> KeysRotateResponse:
        response = await self.http.post("/v1/keys/rotate", headers=self._auth(), json=request.model_dump(mode="json"))
        return KeysRotateResponse.model_validate(_check(response).json())

    # -- events ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def events(self, node_id: uuid.UUID, last_event_id: str | None = None) -> AsyncIterator[AsyncIterator[str]]:
        """Opens the event stream; yields an iterator over its lines once the server said 200."""
        headers = {**self._auth(), "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(10.0, read=SSE_IDLE_TIMEOUT)
        async with self.http.stream("GET", f"/v1/nodes/{node_id}/events", headers=headers,
                                    timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                _check(response)
            yield response.aiter_lines()
