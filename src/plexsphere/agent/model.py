"""The agent's view of a WireGuard interface: what it should be (DesiredState), what it is
(ActualState) and the steps between them (Operation). Plain values, no I/O, so reconcile stays pure
and every backend speaks the same language.

Keys are raw 32-byte values throughout; encodings (hex for UAPI, base64 for `wg` and the wire)
belong to the edges that need them.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Union

PERSISTENT_KEEPALIVE_SECONDS = 25


def key_b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def key_from_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("a WireGuard key is 32 bytes")
    return raw


@functools.lru_cache(maxsize=65536)  # called for every peer on every pass; parsing dominates
def normalise_cidr(text: str) -> str:
    """`10.0.0.1/32` and `10.0.0.1` compare equal; IPv6 is lower-cased and compressed."""
    return str(ipaddress.ip_interface(text if "/" in text else _host_route(text)))


def _host_route(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


@functools.lru_cache(maxsize=65536)
def host_route(address: str) -> str:
    """The allowed IP for a peer: its mesh address as a host route (/32 or /128)."""
    return _host_route(address)


@functools.lru_cache(maxsize=65536)
def normalise_endpoint(text: str | None) -> str | None:
    """`ip:port` / `[v6]:port` in one spelling so desired and actual compare byte for byte.
    Hostnames (a relay's fallback endpoint may be one) are kept as given."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        return text
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return text
    return f"[{ip}]:{int(port)}" if ip.version == 6 else f"{ip}:{int(port)}"


@dataclass(frozen=True)
class PeerConfig:
    public_key: bytes
    allowed_ips: tuple[str, ...]
    endpoint: str | None = None
    preshared_key: bytes | None = None
    persistent_keepalive: int = PERSISTENT_KEEPALIVE_SECONDS

    def __post_init__(self) -> None:
        # Canonical forms here mean reconcile can compare with ==.
        object.__setattr__(self, "allowed_ips", tuple(sorted(normalise_cidr(c) for c in self.allowed_ips)))
        object.__setattr__(self, "endpoint", normalise_endpoint(self.endpoint))
        if self.preshared_key == bytes(32):
            object.__setattr__(self, "preshared_key", None)


@dataclass(frozen=True)
class PeerStatus:
    """Read-only facts about a live peer that reconcile may use but never sets."""

    latest_handshake_age: float | None = None  # seconds; None = never
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True)
class InterfaceConfig:
    private_key: bytes
    listen_port: int
    addresses: tuple[str, ...]  # e.g. ("10.50.0.1/24",): the mesh IP with the Domain prefix

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(sorted(normalise_cidr(a) for a in self.addresses)))


@dataclass(frozen=True)
class DesiredState:
    interface: InterfaceConfig
    peers: dict[bytes, PeerConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class ActualState:
    exists: bool = False
    up: bool = False
    private_key: bytes | None = None
    listen_port: int | None = None
    addresses: frozenset[str] = frozenset()
    peers: dict[bytes, PeerConfig] = field(default_factory=dict)
    status: dict[bytes, PeerStatus] = field(default_factory=dict)


# -- operations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateInterface:
    pass


@dataclass(frozen=True)
class SetPrivateKey:
    private_key: bytes

    def __repr__(self) -> str:  # never print key material
        return "SetPrivateKey(<redacted>)"


@dataclass(frozen=True)
class SetListenPort:
    port: int


@dataclass(frozen=True)
class RemovePeer:
    public_key: bytes

    def __repr__(self) -> str:
        return f"RemovePeer({key_b64(self.public_key)})"


@dataclass(frozen=True)
class UpsertPeer:
    """Set a peer's whole configuration: allowed IPs are replaced, a missing PSK is cleared, and
    the endpoint is set only when `peer.endpoint` is given (WireGuard cannot unset one)."""

    peer: PeerConfig

    def __repr__(self) -> str:
        p = self.peer
        return (f"UpsertPeer({key_b64(p.public_key)}, allowed_ips={list(p.allowed_ips)}, endpoint={p.endpoint}, "
                f"psk={'set' if p.preshared_key else 'none'}, keepalive={p.persistent_keepalive})")


@dataclass(frozen=True)
class AddAddress:
    cidr: str


@dataclass(frozen=True)
class RemoveAddress:
    cidr: str


@dataclass(frozen=True)
class SetLinkUp:
    pass


Operation = Union[  # noqa: UP007 - a runtime alias for isinstance-free matching in backends
    CreateInterface, SetPrivateKey, SetListenPort, RemovePeer, UpsertPeer, AddAddress, RemoveAddress, SetLinkUp
]
