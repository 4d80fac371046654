"""The few STUN messages (RFC 5389 binding requests and answers, RFC 5780 CHANGE-REQUEST) that
plexd asks from its WireGuard port and that the control plane and relays answer (docs/nat.md).
Shared by the agent and the server, like crypto.py: no I/O."""

from __future__ import annotations

import ipaddress
import os
import struct

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_CHANGE_REQUEST = 0x0003
ATTR_XOR_MAPPED_ADDRESS = 0x0020
CHANGE_PORT = 0x02
HEADER = struct.Struct("!HHI12s")


def transaction_id() -> bytes:
    return os.urandom(12)


def binding_request(txid: bytes, *, change_port: bool = False, extra: bytes = b"") -> bytes:
    """A binding request; `extra` is already-encoded attributes (e.g. a relay hello's)."""
    attrs = b""
    if change_port:
        attrs += struct.pack("!HHI", ATTR_CHANGE_REQUEST, 4, CHANGE_PORT)
    attrs += extra
    return HEADER.pack(BINDING_REQUEST, len(attrs), MAGIC_COOKIE, txid) + attrs


def attribute(kind: int, value: bytes) -> bytes:
    """One TLV, padded to 4 bytes."""
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def parse_attributes(message: bytes) -> dict[int, bytes] | None:
    """The attributes of a well-formed STUN message (first of each kind), else None."""
    if len(message) < HEADER.size:
        return None
    _, length, cookie, _ = HEADER.unpack_from(message)
    if cookie != MAGIC_COOKIE or length % 4 or HEADER.size + length > len(message):
        return None
    attrs: dict[int, bytes] = {}
    offset, end = HEADER.size, HEADER.size + length
    while offset + 4 <= end:
        kind, size = struct.unpack_from("!HH", message, offset)
        value = message[offset + 4:offset + 4 + size]
        if len(value) != size:
            return None
        attrs.setdefault(kind, value)
        offset += 4 + size + (-size % 4)
    return attrs


def message_type(message: bytes) -> int | None:
    return struct.unpack_from("!H", message)[0] if len(message) >= 2 else None


def txid_of(message: bytes) -> bytes | None:
    return message[8:20] if len(message) >= HEADER.size else None


def _address(value: bytes, txid: bytes, xor: bool) -> tuple[str, int] | None:
    if len(value) < 8:
        return None
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    raw = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        mask = struct.pack("!I", MAGIC_COOKIE) + txid
        raw = bytes(b ^ m for b, m in zip(raw, mask, strict=False))
    if family == 1 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw)), port
    if family == 2 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw)), port
    return None


def mapped_address(message: bytes, txid: bytes) -> tuple[str, int] | None:
    """The (ip, port) a binding success answer for `txid` reports, else None."""
    if message_type(message) != BINDING_SUCCESS or txid_of(message) != txid:
        return None
    attrs = parse_attributes(message)
    if attrs is None:
        return None
    if ATTR_XOR_MAPPED_ADDRESS in attrs:
        return _address(attrs[ATTR_XOR_MAPPED_ADDRESS], txid, xor=True)
    if ATTR_MAPPED_ADDRESS in attrs:
        return _address(attrs[ATTR_MAPPED_ADDRESS], txid, xor=False)
    return None


def binding_success(txid: bytes, ip: str, port: int) -> bytes:
    """The answer a STUN responder (control plane, relay) sends: XOR-MAPPED-ADDRESS of the asker."""
    address = ipaddress.ip_address(ip)
    mask = struct.pack("!I", MAGIC_COOKIE) + txid
    raw = bytes(b ^ m for b, m in zip(address.packed, mask, strict=False))
    value = struct.pack("!BBH", 0, 1 if address.version == 4 else 2, port ^ (MAGIC_COOKIE >> 16)) + raw
    attrs = attribute(ATTR_XOR_MAPPED_ADDRESS, value)
    return HEADER.pack(BINDING_SUCCESS, len(attrs), MAGIC_COOKIE, txid) + attrs


def wants_change_port(message: bytes) -> bool:
    attrs = parse_attributes(message) or {}
    value = attrs.get(ATTR_CHANGE_REQUEST, b"")
    return len(value) == 4 and bool(struct.unpack("!I", value)[0] & CHANGE_PORT)
