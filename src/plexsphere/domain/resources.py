"""Pure rules for Resources (the handles Nodes enrol against). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plexsphere.domain.errors import ProblemError

ORIGINS = ("adopted", "provisioned")
PROVISIONED_ONLY = ("blueprint_version_id", "cloud_credential_id", "parameters")
KIND_MAX = 64
REF_MAX = 256


@dataclass(frozen=True)
class ResourceCreate:
    origin: str
    kind: str
    external_ref: str | None
    handle: str | None  # None: the platform handle defaults to external_ref, else the id


def _bad(detail: str, code: str = "invalid_body") -> ProblemError:
    return ProblemError(400, code, detail)


def _text(body: dict[str, Any], key: str, max_len: int, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"{key} is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_len:
        raise _bad(f"{key} must be 1-{max_len} characters and not only whitespace")
    return value.strip()


def parse_create(body: dict[str, Any]) -> ResourceCreate:
    origin = body.get("origin")
    if origin not in ORIGINS:
        raise _bad("origin must be adopted or provisioned", "invalid_resource_origin")
    kind = _text(body, "kind", KIND_MAX, required=True)
    assert kind is not None
    if origin == "adopted":
        mixed = [k for k in PROVISIONED_ONLY if body.get(k) is not None]
        if mixed:
            raise _bad(f"{', '.join(mixed)} only apply to provisioned Resources")
    elif body.get("external_ref") is not None:
        raise _bad("external_ref only applies to adopted Resources")
    return ResourceCreate(origin, kind, _text(body, "external_ref", REF_MAX, required=False),
                          _text(body, "handle", REF_MAX, required=False))
