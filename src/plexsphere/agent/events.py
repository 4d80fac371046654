"""The node event stream, minus the network: an incremental SSE frame parser and the verifier of
signed envelopes (DECISIONS 5).

An envelope is `{"id","type","scope","key_id","issued_at","payload","signature"}`; the signature is
Ed25519 over the RFC 8785 (JCS) canonical JSON of the envelope without `signature`. The agent trusts
the key pinned at registration and keys announced by a `signing_key_rotated` event that itself
verified under a trusted key; everything else is rejected."""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import rfc8785

from plexsphere.crypto import ed25519_verify


@dataclass(frozen=True)
class SseFrame:
    event: str
    data: str
    id: str | None


class SseParser:
    """Feeds lines (without their terminator) and yields complete frames (W3C event-stream rules:
    `:` comments ignored, several `data:` lines joined by newlines, a blank line dispatches)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseFrame | None:
        if line == "":
            frame = None
            if self._data:
                frame = SseFrame(event=self._event or "message", data="\n".join(self._data), id=self._id)
            self._event, self._data, self._id = "", [], None
            return frame
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


class EnvelopeRejected(Exception):
    """Why an envelope was not trusted; the message is safe to log (no payload contents)."""


def canonical_bytes(envelope: dict[str, Any]) -> bytes:
    return rfc8785.dumps({k: v for k, v in envelope.items() if k != "signature"})


_ENVELOPE_FIELDS = ("id", "type", "scope", "key_id", "issued_at", "payload", "signature")


class EnvelopeVerifier:
    def __init__(self, keys: dict[str, bytes], *, seen_capacity: int = 4096) -> None:
        if not keys:
            raise ValueError("a verifier needs at least one trusted key")
        self.keys = dict(keys)
        # Replayed envelope ids are dropped: the stream never legitimately repeats one.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_capacity = seen_capacity

    def verify(self, data: str) -> dict[str, Any]:
        """Returns the envelope when it is well-formed, signed by a trusted key and not a replay."""
        try:
            envelope = json.loads(data)
        except ValueError:
            raise EnvelopeRejected("event data is not JSON") from None
        if not isinstance(envelope, dict) or any(f not in envelope for f in _ENVELOPE_FIELDS):
            raise EnvelopeRejected("event is not a signed envelope (missing fields)")
        key_id, signature = envelope["key_id"], envelope["signature"]
        if not isinstance(key_id, str) or not isinstance(signature, str):
            raise EnvelopeRejected("envelope key_id/signature are not strings")
        key = self.keys.get(key_id)
        if key is None:
            raise EnvelopeRejected(f"envelope signed with unknown key id {key_id!r}")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise EnvelopeRejected("envelope signature is not base64") from None
        try:
            message = canonical_bytes(envelope)
        except Exception:  # rfc8785 refuses values JSON cannot round-trip (e.g. huge ints)
            raise EnvelopeRejected("envelope cannot be canonicalised") from None
        if not ed25519_verify(key, raw_signature, message):
            raise EnvelopeRejected(f"bad signature on envelope {envelope.get('id')!r} (key id {key_id!r})")
        event_id = str(envelope["id"])
        if event_id in self._seen:
            raise EnvelopeRejected(f"replayed envelope {event_id!r}")
        self._seen[event_id] = None
        if len(self._seen) > self._seen_capacity:
            self._seen.popitem(last=False)
        return envelope

    def learn_key(self, key_id: str, public_key: bytes) -> None:
        """Only call with a key taken from an envelope `verify` accepted."""
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self.keys[key_id] = public_key


def rotated_signing_key(payload: dict[str, Any]) -> tuple[str, bytes] | None:
    """The (key id, raw key) a `signing_key_rotated` payload announces, accepting the spellings a
    server might use; None when the payload does not name one."""
    key_id = payload.get("key_id") or payload.get("signing_key_id") or payload.get("kid")
    encoded = payload.get("public_key") or payload.get("signing_public_key") or payload.get("current")
    if not isinstance(key_id, str) or not isinstance(encoded, str):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return (key_id, raw) if len(raw) == 32 else None
