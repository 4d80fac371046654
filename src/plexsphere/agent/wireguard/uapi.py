"""The WireGuard cross-platform userspace API (https://www.wireguard.com/xplatform/): a line-based
`key=value` protocol on a Unix socket. `get=1` dumps the device, `set=1` applies a transaction; both
end with a blank line and the reply ends with `errno=N` and a blank line.

Encoding and parsing are pure so they are unit-tested without a socket."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from plexsphere.agent.model import (
    PeerConfig,
    PeerStatus,
    RemovePeer,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
)

SOCKET_DIR = Path("/var/run/wireguard")
ZERO_KEY_HEX = "0" * 64


class UapiError(Exception):
    pass


@dataclass
class DeviceDump:
    private_key: bytes | None = None
    listen_port: int | None = None
    peers: dict[bytes, PeerConfig] = field(default_factory=dict)
    status: dict[bytes, PeerStatus] = field(default_factory=dict)


def socket_path(ifname: str, directory: Path = SOCKET_DIR) -> Path:
    return directory / f"{ifname}.sock"


def encode_set(ops: Iterable[SetPrivateKey | SetListenPort | RemovePeer | UpsertPeer],
               resolve_endpoint=lambda e: e) -> bytes:
    """One `set=1` transaction. `resolve_endpoint` turns a hostname endpoint into `ip:port`,
    because the protocol accepts only literal addresses."""
    lines = ["set=1"]
    for op in ops:
        if isinstance(op, SetPrivateKey):
            lines.append(f"private_key={op.private_key.hex()}")
        elif isinstance(op, SetListenPort):
            lines.append(f"listen_port={op.port}")
        elif isinstance(op, RemovePeer):
            lines += [f"public_key={op.public_key.hex()}", "remove=true"]
        elif isinstance(op, UpsertPeer):
            peer = op.peer
            lines.append(f"public_key={peer.public_key.hex()}")
            lines.append(f"preshared_key={peer.preshared_key.hex() if peer.preshared_key else ZERO_KEY_HEX}")
            if peer.endpoint:
                lines.append(f"endpoint={resolve_endpoint(peer.endpoint)}")
            lines.append(f"persistent_keepalive_interval={peer.persistent_keepalive}")
            lines.append("replace_allowed_ips=true")
            lines += [f"allowed_ip={cidr}" for cidr in peer.allowed_ips]
        else:  # pragma: no cover - the caller filters to the four kinds above
            raise TypeError(f"not a UAPI operation: {op!r}")
    return ("\n".join(lines) + "\n\n").encode()


def parse_errno(reply: str) -> int:
    for line in reply.splitlines():
        if line.startswith("errno="):
            return int(line.split("=", 1)[1])
    raise UapiError("reply has no errno line")


def parse_get(reply: str, now: float) -> DeviceDump:
    """Parses a `get=1` reply; `now` (unix seconds) turns handshake timestamps into ages."""
    dump = DeviceDump()
    current: dict | None = None

    def finish() -> None:
        if current is None:
            return
        key = current["public_key"]
        dump.peers[key] = PeerConfig(
            public_key=key,
            allowed_ips=tuple(current["allowed_ips"]),
            endpoint=current.get("endpoint"),
            preshared_key=current.get("preshared_key"),
            persistent_keepalive=current.get("keepalive", 0),
        )
        sec = current.get("hs_sec", 0)
        age = None if sec == 0 else max(0.0, now - (sec + current.get("hs_nsec", 0) / 1e9))
        dump.status[key] = PeerStatus(latest_handshake_age=age, rx_bytes=current.get("rx", 0),
                                      tx_bytes=current.get("tx", 0))

    errno = None
    for line in reply.splitlines():
        if not line:
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise UapiError("malformed UAPI line")
        if name == "errno":
            errno = int(value)
        elif name == "public_key":
            finish()
            current = {"public_key": bytes.fromhex(value), "allowed_ips": []}
        elif current is None:
            if name == "private_key":
                dump.private_key = bytes.fromhex(value)
            elif name == "listen_port":
                dump.listen_port = int(value)
        elif name == "preshared_key":
            current["preshared_key"] = bytes.fromhex(value)
        elif name == "endpoint":
            current["endpoint"] = value
        elif name == "persistent_keepalive_interval":
            current["keepalive"] = int(value)
        elif name == "allowed_ip":
            current["allowed_ips"].append(value)
        elif name == "last_handshake_time_sec":
            current["hs_sec"] = int(value)
        elif name == "last_handshake_time_nsec":
            current["hs_nsec"] = int(value)
        elif name == "rx_bytes":
            current["rx"] = int(value)
        elif name == "tx_bytes":
            current["tx"] = int(value)
    finish()
    if errno not in (None, 0):
        raise UapiError(f"get failed with errno {errno}")
    return dump


def exchange(path: Path, request: bytes, timeout: float = 5.0) -> str:
    """Sends one request and reads the reply up to its terminating blank line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(request)
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            if buffer.endswith(b"\n\n") and buffer.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(b"errno="):
                break
    return buffer.decode()
