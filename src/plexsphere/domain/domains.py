"""Pure rules for Domains: field validation, reachability policy, mesh CIDR shape. No I/O.

Validators take the decoded JSON body (a dict) so the contract's specific codes
(`invalid_domain`, `invalid_reachability_policy`, `slug_immutable`, `empty_patch`) are ours to
choose rather than a schema library's."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from plexsphere.domain.errors import ProblemError
from plexsphere.timeutil import format_go_duration, parse_go_duration

SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ENV_RE = re.compile(r"^[a-z]+$")
SLUG_MAX = 64
NAME_MAX = 255
DESCRIPTION_MAX = 1024
ENV_MAX = 16

DEFAULT_REACHABILITY = (30, 90, 300)  # heartbeat_interval, stale_after, unreachable_after (seconds)
REACHABILITY_KEYS = ("heartbeat_interval", "stale_after", "unreachable_after")
HOUR = 3600
# Unattended signing-key renewal bounds: shorter than a minute would churn keys faster than Nodes can
# follow; longer than ten years is indistinguishable from "off".
MAX_KEY_AGE_MIN_S = 1
MAX_KEY_AGE_MAX_S = 10 * 365 * 24 * HOUR

CREATE_FIELDS = frozenset({"name", "slug", "mesh_cidr", "description", "region", "reachability", "env",
                           "max_key_age"})
PATCH_FIELDS = frozenset({"name", "description", "region", "mesh_cidr", "reachability", "max_key_age"})


def invalid(detail: str, code: str = "invalid_domain") -> ProblemError:
    return ProblemError(400, code, detail)


def check_slug(value: Any, code: str = "invalid_domain") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= SLUG_MAX or not SLUG_RE.match(value):
        raise invalid("slug must be 1-64 characters of kebab-case (a-z, 0-9, single dashes)", code)
    return value


def check_name(value: Any, code: str = "invalid_domain") -> str:
    if not isinstance(value, str):
        raise invalid("name must be a string", code)
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise invalid("name must be 1-255 characters and not only whitespace", code)
    return value


def check_description(value: Any, code: str = "invalid_domain") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise invalid("description must be a string of at most 1024 characters", code)
    if value and not value.strip():
        raise invalid("description must not be only whitespace", code)
    return value


def check_region(value: Any) -> str | None:
    """None (unpinned) for absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > SLUG_MAX or not SLUG_RE.match(value):
        raise invalid("region must be at most 64 characters of kebab-case")
    return value


def check_env(value: Any) -> str:
    if value is None:
        return "dev"
    if not isinstance(value, str) or not 1 <= len(value) <= ENV_MAX or not ENV_RE.match(value):
        raise invalid("env must be 1-16 lowercase letters (it appears in the signing key id)")
    return value


def parse_cidr(value: Any, code: str = "invalid_domain", field: str = "mesh_cidr"
               ) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A canonical prefix: host bits zero and written the way Python/Go print it (so
    `10.0.0.1/24` and `10.0.0.0/024` are refused rather than silently rewritten)."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a CIDR string", code)
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise invalid(f"{field} must be a canonical CIDR prefix such as 10.42.0.0/16", code) from None
    if str(network) != value:
        raise invalid(f"{field} must be written canonically as {network}", code)
    if network.num_addresses < 2 or (network.version == 4 and network.prefixlen > 30):
        raise invalid(f"{field} leaves no room for host addresses", code)
    return network


@dataclass(frozen=True)
class Reachability:
    heartbeat_interval_s: int
    stale_after_s: int
    unreachable_after_s: int

    def as_wire(self) -> dict[str, str]:
        return {
            "heartbeat_interval": format_go_duration(self.heartbeat_interval_s),
            "stale_after": format_go_duration(self.stale_after_s),
            "unreachable_after": format_go_duration(self.unreachable_after_s),
        }


def _whole_seconds(text: Any, key: str) -> int:
    bad = invalid(f"reachability.{key} must be a Go duration in whole seconds, e.g. \"30s\" or \"5m\"",
                  "invalid_reachability_policy")
    duration = parse_go_duration(text) if isinstance(text, str) else None
    if duration is None:
        raise bad
    seconds = duration.total_seconds()
    if seconds != int(seconds):
        raise bad
    return int(seconds)


def parse_reachability(value: Any) -> Reachability:
    """All three durations or none; all-zero or none means the platform default."""
    code = "invalid_reachability_policy"
    if value is None:
        return Reachability(*DEFAULT_REACHABILITY)
    if not isinstance(value, dict):
        raise invalid("reachability must be an object", code)
    unknown = set(value) - set(REACHABILITY_KEYS)
    if unknown:
        raise invalid(f"reachability has unknown fields: {', '.join(sorted(unknown))}", code)
    present = [k for k in REACHABILITY_KEYS if value.get(k) not in (None, "")]
    if not present:
        return Reachability(*DEFAULT_REACHABILITY)
    if len(present) != len(REACHABILITY_KEYS):
        raise invalid("reachability needs all of heartbeat_interval, stale_after and unreachable_after, or none",
                      code)
    interval, stale, unreachable = (_whole_seconds(value[k], k) for k in REACHABILITY_KEYS)
    if interval == stale == unreachable == 0:
        return Reachability(*DEFAULT_REACHABILITY)
    if not 10 <= interval <= HOUR:
        raise invalid("heartbeat_interval must be between 10s and 1h", code)
    if not 3 * interval <= stale <= HOUR:
        raise invalid("stale_after must be at least 3x heartbeat_interval and at most 1h", code)
    if not 2 * stale <= unreachable <= HOUR:
        raise invalid("unreachable_after must be at least 2x stale_after and at most 1h", code)
    return Reachability(interval, stale, unreachable)


def parse_max_key_age(value: Any) -> int | None:
    """Seconds, or None for off (absent, null, "0" or "0s")."""
    if value is None:
        return None
    duration = parse_go_duration(value) if isinstance(value, str) else None
    if duration is None:
        raise invalid("max_key_age must be a Go duration such as \"720h\"")
    seconds = duration.total_seconds()
    if seconds == 0:
        return None
    if seconds != int(seconds) or not MAX_KEY_AGE_MIN_S <= seconds <= MAX_KEY_AGE_MAX_S:
        raise invalid("max_key_age must be whole seconds between 1s and 87600h")
    return int(seconds)


@dataclass(frozen=True)
class DomainCreate:
    name: str
    slug: str
    mesh_cidr: str
    description: str
    region: str | None
    env: str
    reachability: Reachability
    max_key_age_s: int | None


def parse_create(body: dict[str, Any]) -> DomainCreate:
    for key in ("name", "slug", "mesh_cidr"):
        if key not in body:
            raise invalid(f"{key} is required")
    return DomainCreate(
        name=check_name(body["name"]),
        slug=check_slug(body["slug"]),
        mesh_cidr=str(parse_cidr(body["mesh_cidr"])),
        description=check_description(body.get("description")),
        region=check_region(body.get("region")),
        env=check_env(body.get("env")),
        reachability=parse_reachability(body.get("reachability")),
        max_key_age_s=parse_max_key_age(body.get("max_key_age")),
    )


_UNSET = object()


@dataclass(frozen=True)
class DomainPatch:
    """Fields left as _UNSET are not changed."""
    name: Any = _UNSET
    description: Any = _UNSET
    region: Any = _UNSET
    mesh_cidr: Any = _UNSET
    reachability: Any = _UNSET
    max_key_age_s: Any = _UNSET

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not _UNSET}


def check_patch_keys(body: dict[str, Any], allowed: frozenset[str] | set[str], noun: str) -> None:
    """The checks every tenancy PATCH shares, in the contract's order. The slug comes first: even an
    unchanged slug is refused, and that refusal is more useful than "unknown field"."""
    if "slug" in body:
        raise ProblemError(400, "slug_immutable", f"a {noun}'s slug cannot be changed", title="Slug Immutable")
    unknown = set(body) - allowed
    if unknown:
        raise invalid(f"unknown fields: {', '.join(sorted(unknown))}", "invalid_body")
    if not body:
        raise ProblemError(400, "empty_patch", "the patch names no field to change")


def parse_patch(body: dict[str, Any]) -> DomainPatch:
    check_patch_keys(body, PATCH_FIELDS, "Domain")
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = check_name(body["name"])
    if "description" in body:
        fields["description"] = check_description(body["description"])
    if "region" in body:
        fields["region"] = check_region(body["region"])
    if "mesh_cidr" in body:
        fields["mesh_cidr"] = str(parse_cidr(body["mesh_cidr"]))
    if "reachability" in body:
        fields["reachability"] = parse_reachability(body["reachability"])
    if "max_key_age" in body:
        fields["max_key_age_s"] = parse_max_key_age(body["max_key_age"])
    return DomainPatch(**fields)


def stranded_sub_ranges(new_cidr: str, sub_ranges: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """The (project_id, sub_range) reservations that would fall outside `new_cidr`."""
    network = ipaddress.ip_network(new_cidr)
    out = []
    for project_id, sub_range in sub_ranges:
        sub = ipaddress.ip_network(sub_range)
        if sub.version != network.version or not sub.subnet_of(network):  # type: ignore[arg-type]
            out.append((project_id, sub_range))
    return out


def child_count_detail(counts: dict[str, int]) -> str:
    def n(key: str, singular: str, plural: str) -> str:
        value = counts[key]
        return f"{value} {singular if value == 1 else plural}"

    return ("Domain has " + ", ".join([
        n("projects", "project", "projects"), n("groups", "group", "groups"),
        n("identities", "identity", "identities"), n("idp_bindings", "idp_binding", "idp_bindings"),
        n("nodes", "node", "nodes"),
    ]) + " still attached")
