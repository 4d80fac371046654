"""`POST /v1/register` request rules, in the contract's order. Pure.

1. `public_key` shape → 400 `public_key_invalid` (before anything touches the token).
2. Empty or zero fields → 422 (application-boundary invariants).
The token checks (403), Project/Resource resolution (404/409) and allocation (503) need the
database and happen in the registration statement (db/register.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from plexsphere import crypto
from plexsphere.domain import bootstrap_tokens
from plexsphere.domain.errors import ProblemError
from plexsphere.ids import parse_uuid

MAX_FIELD_LENGTH = 256


@dataclass(frozen=True)
class RegisterInput:
    project_id: uuid.UUID
    resource_id: str  # the substrate's own name
    handle: str  # the platform handle the Node binds to (DECISIONS 2)
    adopt: bool  # create the Resource when the handle is unknown
    bootstrap_token: str
    nonce: str
    public_key: bytes  # raw 32 bytes


def _unprocessable(code: str, detail: str) -> ProblemError:
    return ProblemError(422, code, detail)


def _required_text(obj: dict[str, Any], field: str, code: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _unprocessable(code, f"{field} must be a non-empty string")
    if len(value) > MAX_FIELD_LENGTH:
        raise _unprocessable(code, f"{field} must be at most {MAX_FIELD_LENGTH} characters")
    return value


def parse_register_request(obj: Any) -> RegisterInput:
    if not isinstance(obj, dict):
        raise ProblemError(400, "invalid_body", "request body must be a JSON object")
    public_key = crypto.parse_wireguard_public_key(obj.get("public_key"))
    if public_key is None:
        raise ProblemError(
            400, "public_key_invalid",
            "public_key must be a 32-byte, non-zero WireGuard key in padded standard base64 (44 characters)",
        )
    token = _required_text(obj, "bootstrap_token", "invalid_bootstrap_token")
    if not bootstrap_tokens.is_well_formed(token):
        raise _unprocessable("invalid_bootstrap_token", "bootstrap_token is not in the psb_<env>_… token format")
    raw_project = obj.get("project_id")
    project_id = parse_uuid(raw_project) if isinstance(raw_project, str) else None
    if project_id is None:
        raise _unprocessable("invalid_project_id", "project_id must be a non-zero UUID")
    resource_id = _required_text(obj, "resource_id", "invalid_resource_id")
    nonce = _required_text(obj, "nonce", "invalid_nonce")
    requested = obj.get("requested_resource_id")
    if requested is not None and not isinstance(requested, str):
        raise _unprocessable("invalid_resource_id", "requested_resource_id must be a string or null")
    if requested and len(requested) > MAX_FIELD_LENGTH:
        raise _unprocessable("invalid_resource_id", f"requested_resource_id must be at most {MAX_FIELD_LENGTH} characters")
    adopt = bool(requested and requested.strip())
    return RegisterInput(
        project_id=project_id,
        resource_id=resource_id,
        handle=requested if adopt else resource_id,
        adopt=adopt,
        bootstrap_token=token,
        nonce=nonce,
        public_key=public_key,
    )


def denial_from_database(message: str, kind: str = "node") -> ProblemError | None:
    """The registration statement raises '<status>:<code>'; anything else is not a denial."""
    status, sep, code = message.partition(":")
    if not sep or not status.isdigit() or not code:
        return None
    detail = DENIAL_DETAILS.get(code, code.replace("_", " "))
    if code == "kind_mismatch":
        detail = f"the bootstrap token is not a {kind} token"
    return ProblemError(int(status), code, detail)


DENIAL_DETAILS = {
    "token_invalid": "the bootstrap token was not issued by this control plane",
    "token_consumed": "the bootstrap token was already redeemed",
    "token_revoked": "the bootstrap token was revoked",
    "token_expired": "the bootstrap token has expired",
    "kind_mismatch": "the bootstrap token is not a node token",
    "project_mismatch": "project_id does not match the bootstrap token's Project",
    "nonce_collision": "the nonce was already used by another registration in this Project",
    "project_not_found": "the Project was not found",
    "resource_not_found": "no Resource with that handle exists in the Project",
    "resource_already_bound": "the Resource is already bound to a live Node",
    "resource_not_bridge": "a bridge enrols only against a Resource of kind bridge",
    "pool_exhausted": "the Domain's mesh address pool is exhausted",
    "signing_unavailable": "the Domain has no active signing key",
}
