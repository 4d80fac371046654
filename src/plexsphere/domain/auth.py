"""Pure rules of operator authentication: device-flow state machine (RFC 8628), user codes,
sign-in throttling, API-token references and lifetimes. No I/O."""

from __future__ import annotations

import email.utils
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from plexsphere.ids import parse_uuid

# -- device flow -----------------------------------------------------------------------------------
# RFC 8628 §6.1: a base32-like alphabet without 0/1/8/9 lookalikes; 8 characters ≈ 40 bits, enough
# against guessing within the code's lifetime because approval needs a signed-in session.
USER_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
USER_CODE_LENGTH = 8
USER_CODE_PATTERN = re.compile(r"^[A-Z2-7]{4}-?[A-Z2-7]{4}$")
DEVICE_CODE_TTL = timedelta(minutes=10)
DEVICE_POLL_INTERVAL_S = 5
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the interval
# Polls may arrive a little early (timer skew, a previous slow request); only clearly faster
# clients are told to slow down.
POLL_TOLERANCE = 0.8

PENDING, APPROVED, DENIED, REDEEMED = "pending", "approved", "denied", "redeemed"


def user_code_from_bytes(raw: bytes) -> str:
    """Stored form (no dash) of a user code drawn from `raw` random bytes (one byte per char)."""
    if len(raw) < USER_CODE_LENGTH:
        raise ValueError("need at least 8 random bytes")
    return "".join(USER_CODE_ALPHABET[b % 32] for b in raw[:USER_CODE_LENGTH])


def display_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """The stored form of a user code as typed (dash optional), or None when it is not one."""
    if not isinstance(text, str) or not USER_CODE_PATTERN.match(text):
        return None
    return text.replace("-", "")


@dataclass(frozen=True)
class DeviceGrant:
    status: str
    expires_at: datetime
    interval_s: int
    last_polled_at: datetime | None


def poll_outcome(grant: DeviceGrant | None, now: datetime) -> str:
    """What a `POST /v1/auth/device-token` poll gets: `issue`, or the RFC 8628 error code."""
    if grant is None or grant.status == REDEEMED:
        return "invalid_grant"
    if now >= grant.expires_at:
        return "expired_token"
    if grant.status == DENIED:
        return "access_denied"
    if grant.status == APPROVED:
        return "issue"
    if grant.last_polled_at is not None:
        elapsed = (now - grant.last_polled_at).total_seconds()
        if elapsed < grant.interval_s * POLL_TOLERANCE:
            return "slow_down"
    return "authorization_pending"


def approval_conflict(grant: DeviceGrant, now: datetime) -> str | None:
    """Why a user code can no longer be approved or denied (a 409 code), or None."""
    if grant.status in (APPROVED, REDEEMED):
        return "device-code-already-approved"
    if grant.status == DENIED or now >= grant.expires_at:
        return "device-code-expired"
    return None


# -- password sign-in throttling -------------------------------------------------------------------
SIGN_IN_WINDOW = timedelta(minutes=15)
FAILURES_PER_USER_AND_SOURCE = 10
FAILURES_PER_SOURCE = 100


def throttle_keys(username: str, source: str) -> dict[str, int]:
    """Throttle key → failures allowed per window. Per (user, source) so one attacker cannot lock
    the real user out from elsewhere; per source to bound one host guessing across usernames."""
    return {f"user:{username.lower()}|{source}": FAILURES_PER_USER_AND_SOURCE, f"source:{source}": FAILURES_PER_SOURCE}


def retry_after(failures: int, window_started_at: datetime, limit: int, now: datetime,
                window: timedelta = SIGN_IN_WINDOW) -> int | None:
    """Seconds until sign-in may be tried again under one key, or None when it may be tried now."""
    window_ends = window_started_at + window
    if failures < limit or now >= window_ends:
        return None
    return max(1, int((window_ends - now).total_seconds() + 0.999))


# -- API tokens ------------------------------------------------------------------------------------
ENV_PREFIXES = ("dev", "stage", "prod")
API_TOKEN_MIN_TTL = timedelta(minutes=5)
API_TOKEN_MAX_TTL = timedelta(days=366)
# How long a rotated-from plaintext keeps working: long enough to roll it out, short enough that a
# leaked one is dead soon.
ROTATION_GRACE = timedelta(minutes=15)

_REF_KINDS = {"user": "user", "service": "service-identity"}


def parse_identity_ref(text: str) -> tuple[str, uuid.UUID] | None:
    """`user:<uuid>` | `service:<uuid>` → (identity kind as stored, id); None when malformed."""
    if not isinstance(text, str):
        return None
    prefix, sep, rest = text.partition(":")
    kind = _REF_KINDS.get(prefix)
    identity_id = parse_uuid(rest) if sep else None
    if kind is None or identity_id is None:
        return None
    return kind, identity_id


def principal_type(identity_kind: str) -> str:
    """Whoami's spelling of an identity kind."""
    return "service" if identity_kind == "service-identity" else "user"


def api_token_ttl(ttl_seconds: int | None, default_seconds: int) -> timedelta | None:
    """The lifetime to grant, or None when the requested one is out of bounds."""
    seconds = default_seconds if ttl_seconds is None else ttl_seconds
    # Compared as integers first: timedelta overflows on the huge values a client may send.
    if not API_TOKEN_MIN_TTL.total_seconds() <= seconds <= API_TOKEN_MAX_TTL.total_seconds():
        return None
    return timedelta(seconds=seconds)


def rotation_deadline(now: datetime, expires_at: datetime, grace: timedelta = ROTATION_GRACE) -> datetime:
    """When the rotated-from plaintext retires: whole seconds, so the `Sunset` http-date and the
    body's `rotation_deadline` name the same instant; never after the token itself expires."""
    return min(now + grace, expires_at).replace(microsecond=0)


def http_date(value: datetime) -> str:
    return email.utils.format_datetime(value, usegmt=True)
