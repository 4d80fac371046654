"""Helpers shared by the mesh tests: enrol Nodes through the real `POST /v1/register`, wait for
their anchoring, build NSK bearers and heartbeat/endpoint bodies, read SSE frames."""

from __future__ import annotations

import base64
import http.client
import secrets
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from tests.conftest import wait_until
from tests.integration.enrolment_helpers import issue, make_domain, make_project, register_body

from plexsphere import crypto
from plexsphere.timeutil import rfc3339, utcnow

__all__ = ["Enrolled", "enrol", "make_domain", "make_project", "wait_anchored", "heartbeat_body", "endpoint_body",
           "SseReader", "node_http"]


@dataclass
class Enrolled:
    node_id: str
    mesh_ip: str
    nsk: str  # base64, as register returned it
    bearer: str  # nsk_<env>_<b64url(id ‖ nsk)>
    response: dict
    public_key: str = ""

    @property
    def nsk_bytes(self) -> bytes:
        return base64.b64decode(self.nsk)


def enrol(stack, project_id, *, kind: str = "node", wait: bool = True) -> Enrolled:
    with stack.http() as http:
        token = issue(http, project_id, kind=kind)["token"]
        body = register_body(project_id, token)
        with stack.http(token="") as anon:
            resp = anon.post("/v1/bridges/register" if kind == "bridge" else "/v1/register", json=body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    bearer = crypto.format_nsk_bearer("dev", uuid.UUID(data["node_id"]), base64.b64decode(data["nsk"]))
    node = Enrolled(data["node_id"], data["mesh_ip"], data["nsk"], bearer, data, body["public_key"])
    if wait:
        wait_anchored(stack, node.node_id)
    return node


def enrol_relay(stack, project_id, endpoint: str = "203.0.113.10:51820", listen_port: int = 3478,
                enabled: bool = True) -> Enrolled:
    """A bridge Node with a reported endpoint and a relay configured on its Resource."""
    bridge = enrol(stack, project_id, kind="bridge")
    with node_http(stack, bridge) as http:
        assert http.put(f"/v1/nodes/{bridge.node_id}/endpoint",
                        json=endpoint_body(endpoint, "full_cone")).status_code == 200
    resource_id = stack.sql_value("SELECT resource_id FROM plexsphere.nodes WHERE id = %s", bridge.node_id)
    with stack.http() as http:
        resp = http.put(f"/v1/projects/{project_id}/resources/{resource_id}/bridge/relay",
                        json={"enabled": enabled, "listen_port": listen_port})
    assert resp.status_code == 200, resp.text
    return bridge


def wait_anchored(stack, *node_ids: str, timeout: float = 10.0) -> None:
    wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.peers WHERE node_id = ANY(%s::uuid[])",
                                       list(node_ids)) == len(node_ids),
               timeout=timeout, message=f"anchoring of {node_ids}")


def node_http(stack, node: Enrolled, **kw) -> httpx.Client:
    return stack.http(token=node.bearer, **kw)


def heartbeat_body(**overrides) -> dict:
    body = {"client_now": rfc3339(utcnow()), "binary_checksum": secrets.token_hex(32),
            "binary_version": "plexd-v0.4.2-ge5f3a1c", "nat_summary": {}}
    body.update(overrides)
    return body


def endpoint_body(endpoint: str = "203.0.113.7:51820", nat_type: str = "port_restricted",
                  reported_at_offset_s: float = 0, **overrides) -> dict:
    body = {"endpoint": endpoint, "nat_type": nat_type,
            "reported_at": rfc3339(utcnow() + timedelta(seconds=reported_at_offset_s))}
    body.update(overrides)
    return body


@dataclass
class Frame:
    id: str | None
    event: str
    data: str


@dataclass
class SseReader:
    """Reads an SSE response in a background thread; frames and comments collect as they arrive.
    Built on http.client so that `close()` can shut the socket down under the blocked reader (the
    server then sees the disconnect at once)."""

    url: str
    headers: dict
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    response_headers: dict = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._opened.wait(10)

    def _run(self) -> None:
        try:
            self._conn.request("GET", self._path, headers=self.headers)
            resp = self._conn.getresponse()
            self.status = resp.status
            self.response_headers = {k.lower(): v for k, v in resp.getheaders()}
            self._opened.set()
            if resp.status != 200:
                self.error = resp.read().decode(errors="replace")
                return
            current: dict = {}
            data: list[str] = []
            while True:
                raw = resp.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        self.frames.append(Frame(current.get("id"), current.get("event", "message"), "\n".join(data)))
                    current, data = {}, []
                elif line.startswith(":"):
                    self.comments.append(line[1:])
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        data.append(value)
                    else:
                        current[name] = value
        except Exception as exc:  # noqa: BLE001 (a torn-down socket surfaces as assorted errors)
            self.error = repr(exc)
        finally:
            self._opened.set()

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()
        self._thread.join(5)

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def of_type(self, event_type: str) -> list[Frame]:
        return [f for f in list(self.frames) if f.event == event_type]
