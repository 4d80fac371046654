"""What a relay reads in the packets it forwards, and the hello that binds a Node to its address —
pure, no sockets (docs/nat.md, "Relays").

A relay never decrypts: it reads only WireGuard's cleartext framing — the message type, the
sender/receiver session indexes, and `mac1`, which proves a handshake message was made for a given
responder public key (WireGuard's own DoS check; anyone who knows the public key can compute it) —
enough to deliver a handshake to the right Node and to splice the session that follows by its
receiver index.

A hello is a STUN binding request from the Node's WireGuard port carrying its node id, a
millisecond timestamp and a tag keyed by the pairwise PSK of the Node↔bridge edge (both ends hold
it; nobody else does), so a relay binds a Node to the address the hello came from only when the
Node itself sent it, and never to an older hello replayed from elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

from plexsphere import stun

# -- WireGuard framing ----------------------------------------------------------------------------
INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
INITIATION_SIZE, RESPONSE_SIZE, COOKIE_REPLY_SIZE = 148, 92, 64
_MAC1_LABEL = b"mac1----"


@dataclass(frozen=True)
class WgMessage:
    kind: int
    sender: int | None  # the index the sending end chose (initiation, response)
    receiver: int | None  # the index of the end it is for (response, cookie reply, transport)


def parse_wireguard(packet: bytes) -> WgMessage | None:
    """The framing of a WireGuard message, or None for anything else."""
    if len(packet) < 4 or packet[1:4] != b"\0\0\0":
        return None
    kind = packet[0]
    if kind == INITIATION and len(packet) == INITIATION_SIZE:
        return WgMessage(kind, struct.unpack_from("<I", packet, 4)[0], None)
    if kind == RESPONSE and len(packet) == RESPONSE_SIZE:
        return WgMessage(kind, struct.unpack_from("<I", packet, 4)[0], struct.unpack_from("<I", packet, 8)[0])
    if kind == COOKIE_REPLY and len(packet) == COOKIE_REPLY_SIZE:
        return WgMessage(kind, None, struct.unpack_from("<I", packet, 4)[0])
    if kind == TRANSPORT and len(packet) >= 32:
        return WgMessage(kind, None, struct.unpack_from("<I", packet, 4)[0])
    return None


def mac1_key(public_key: bytes) -> bytes:
    """Precomputed per responder: BLAKE2s-256("mac1----" ‖ its static public key)."""
    return hashlib.blake2s(_MAC1_LABEL + public_key).digest()


def mac1_matches(packet: bytes, key: bytes) -> bool:
    """Whether a handshake message's mac1 was computed for the responder of `key`."""
    offset = {INITIATION_SIZE: 116, RESPONSE_SIZE: 60}.get(len(packet))
    if offset is None:
        return False
    expected = hashlib.blake2s(packet[:offset], key=key, digest_size=16).digest()
    return hmac.compare_digest(expected, packet[offset:offset + 16])


def nft_index(receiver: int) -> int:
    """The receiver index as nftables reads it (`@th,96,32`: the 4 wire bytes, big-endian)."""
    return int.from_bytes(struct.pack("<I", receiver), "big")


# -- hellos ---------------------------------------------------------------------------------------
ATTR_NODE_ID, ATTR_SENT_AT, ATTR_TAG = 0x8A01, 0x8A02, 0x8A03
HELLO_WINDOW_MS = 60_000
_HELLO_LABEL = b"plexsphere relay hello v1"


def hello_key(edge_psk: bytes) -> bytes:
    """A key of its own for hellos, derived from the Node↔bridge edge PSK (never the PSK itself)."""
    return hmac.new(edge_psk, _HELLO_LABEL, hashlib.sha256).digest()


def _tag(key: bytes, txid: bytes, node_id: uuid.UUID, sent_at_ms: int) -> bytes:
    return hmac.new(key, txid + node_id.bytes + struct.pack("!Q", sent_at_ms), hashlib.sha256).digest()[:16]


def hello(txid: bytes, node_id: uuid.UUID, sent_at_ms: int, key: bytes) -> bytes:
    extra = (stun.attribute(ATTR_NODE_ID, node_id.bytes) + stun.attribute(ATTR_SENT_AT, struct.pack("!Q", sent_at_ms))
             + stun.attribute(ATTR_TAG, _tag(key, txid, node_id, sent_at_ms)))
    return stun.binding_request(txid, extra=extra)


@dataclass(frozen=True)
class Hello:
    node_id: uuid.UUID
    sent_at_ms: int
    txid: bytes
    tag: bytes


def parse_hello(message: bytes) -> Hello | None:
    """The claimed sender of a hello (not yet verified), or None when it is no hello."""
    if stun.message_type(message) != stun.BINDING_REQUEST:
        return None
    attrs = stun.parse_attributes(message)
    txid = stun.txid_of(message)
    if attrs is None or txid is None:
        return None
    raw_id, raw_at, tag = attrs.get(ATTR_NODE_ID), attrs.get(ATTR_SENT_AT), attrs.get(ATTR_TAG)
    if raw_id is None or raw_at is None or tag is None or len(raw_id) != 16 or len(raw_at) != 8 or len(tag) != 16:
        return None
    return Hello(uuid.UUID(bytes=raw_id), struct.unpack("!Q", raw_at)[0], txid, tag)


def verify_hello(h: Hello, key: bytes, now_ms: int, last_ms: int | None) -> bool:
    """Authentic, recent (±HELLO_WINDOW_MS) and newer than the last hello accepted from that Node."""
    if abs(now_ms - h.sent_at_ms) > HELLO_WINDOW_MS or (last_ms is not None and h.sent_at_ms <= last_ms):
        return False
    return hmac.compare_digest(_tag(key, h.txid, h.node_id, h.sent_at_ms), h.tag)
