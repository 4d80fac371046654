"""Cursor pagination (DECISIONS 10): `cursor` + `limit` (default 50, 1–200) → `{items, next_cursor}`.
A cursor is base64url(JSON keyset) + "." + base64url(HMAC), bound to the caller and the list it
came from: tampered → 400 `invalid_cursor`, presented by another caller → 403
`cursor_binding_mismatch`."""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.domain.errors import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def parse_limit(raw: str | int | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ProblemError(400, "invalid_limit", "limit must be an integer between 1 and 200") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ProblemError(400, "invalid_limit", "limit must be between 1 and 200")
    return value


def encode_cursor(keyring: Keyring, caller: str, listing: str, keyset: list[Any]) -> str:
    body = crypto.b64url(orjson.dumps({"k": keyset, "l": listing, "c": _caller_tag(keyring, caller)}))
    return body + "." + crypto.b64url(keyring.sign_blob("cursor", body.encode())[:16])


def decode_cursor(keyring: Keyring, caller: str, listing: str, cursor: str | None) -> list[Any] | None:
    """The keyset after which the next page starts, or None for the first page."""
    if cursor is None or cursor == "":
        return None
    invalid = ProblemError(400, "invalid_cursor", "cursor is malformed or was not issued by this server")
    body, sep, mac = cursor.partition(".")
    if not sep:
        raise invalid
    try:
        expected = crypto.b64url(keyring.sign_blob("cursor", body.encode())[:16])
        if not crypto.constant_time_equal(expected.encode(), mac.encode()):
            raise invalid
        data = orjson.loads(crypto.b64url_decode(body))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid from None
    if not isinstance(data, dict) or data.get("l") != listing or not isinstance(data.get("k"), list):
        raise invalid
    if data.get("c") != _caller_tag(keyring, caller):
        raise ProblemError(403, "cursor_binding_mismatch", "cursor was issued to another caller")
    return data["k"]


def _caller_tag(keyring: Keyring, caller: str) -> str:
    return crypto.b64url(keyring.digest("cursor-caller", caller)[:9])
