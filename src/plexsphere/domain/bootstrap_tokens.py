"""Bootstrap tokens: the plaintext format (DECISIONS 3), issue-request rules and lifecycle. Pure.

A token is `psb_<env>_<base32(project uuid bytes)>_<kind>_<base32(random)>`, all lowercase and
unpadded. Only its keyed digest is stored, so redemption is one indexed lookup.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plexsphere.crypto import base32_lower
from plexsphere.domain.errors import ProblemError

PREFIX = "psb"
KINDS = ("node", "bridge")
TOKEN_PATTERN = re.compile(r"^psb_[a-z]+_[a-z2-7]+_(node|bridge)_[a-z2-7]{20,}$")
ENV_PREFIX_PATTERN = re.compile(r"^[a-z]{1,32}$")
MIN_TTL_SECONDS = 300
MAX_TTL_SECONDS = 86400
# 20 bytes = 160 bits, exactly 32 base32 characters (no padding to strip).
RANDOM_BYTES = 20
DIGEST_PURPOSE = "bootstrap-token"


@dataclass(frozen=True)
class IssueSpec:
    kind: str
    env_prefix: str
    ttl_seconds: int


def format_token(env_prefix: str, project_id: uuid.UUID, kind: str, random: bytes) -> str:
    return f"{PREFIX}_{env_prefix}_{base32_lower(project_id.bytes)}_{kind}_{base32_lower(random)}"


def is_well_formed(token: object) -> bool:
    return isinstance(token, str) and TOKEN_PATTERN.match(token) is not None


def parse_issue_request(obj: Any) -> IssueSpec:
    """The contract's BootstrapTokenIssueRequest, each failure a 400 problem (TTL: `invalid_ttl`)."""
    if not isinstance(obj, dict):
        raise ProblemError(400, "invalid_body", "request body must be a JSON object")
    unknown = sorted(set(obj) - {"kind", "env_prefix", "ttl_seconds"})
    if unknown:
        raise ProblemError(400, "invalid_body", f"unknown field(s): {', '.join(unknown)}")
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ProblemError(400, "invalid_body", "kind must be one of: node, bridge")
    env_prefix = obj.get("env_prefix")
    if not isinstance(env_prefix, str) or not ENV_PREFIX_PATTERN.match(env_prefix):
        raise ProblemError(400, "invalid_body", "env_prefix must be 1-32 lowercase letters (a-z)")
    ttl = obj.get("ttl_seconds")
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise ProblemError(400, "invalid_ttl", "ttl_seconds must be an integer number of seconds")
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise ProblemError(
            400, "invalid_ttl", f"ttl_seconds must be between {MIN_TTL_SECONDS} (5m) and {MAX_TTL_SECONDS} (24h)"
        )
    return IssueSpec(kind=kind, env_prefix=env_prefix, ttl_seconds=ttl)


def state(consumed_at: datetime | None, revoked_at: datetime | None, expires_at: datetime, now: datetime) -> str:
    """live | consumed | revoked | expired; `expired` is derived from the clock, never stored."""
    if consumed_at is not None:
        return "consumed"
    if revoked_at is not None:
        return "revoked"
    if expires_at <= now:
        return "expired"
    return "live"


def revoke_conflict(consumed_at: datetime | None, revoked_at: datetime | None) -> ProblemError | None:
    """Revoking a terminal token is a 409 that tells who came first (the Node, or another revoke)."""
    if consumed_at is not None:
        return ProblemError(409, "token_consumed", "the bootstrap token was already redeemed")
    if revoked_at is not None:
        return ProblemError(409, "token_revoked", "the bootstrap token was already revoked")
    return None
