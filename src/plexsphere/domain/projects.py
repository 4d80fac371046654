"""Pure rules for Projects: field validation and sub-range reservations. No I/O."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from plexsphere.domain.domains import (
    _UNSET,
    check_description,
    check_name,
    check_patch_keys,
    check_slug,
    parse_cidr,
)
from plexsphere.domain.errors import ProblemError
from plexsphere.ids import parse_uuid

CODE = "invalid_project"
PATCH_FIELDS = frozenset({"name", "description", "sub_range_cidr", "release_sub_range"})


def invalid(detail: str, code: str = CODE) -> ProblemError:
    return ProblemError(400, code, detail)


@dataclass(frozen=True)
class ProjectCreate:
    domain_id: uuid.UUID
    name: str
    slug: str
    description: str
    sub_range_cidr: str | None


def parse_create(body: dict[str, Any]) -> ProjectCreate:
    for key in ("domain_id", "name", "slug"):
        if key not in body:
            raise invalid(f"{key} is required")
    domain_id = parse_uuid(body["domain_id"]) if isinstance(body["domain_id"], str) else None
    if domain_id is None:
        raise invalid("domain_id must be a UUID")
    sub_range = body.get("sub_range_cidr")
    return ProjectCreate(
        domain_id=domain_id,
        name=check_name(body["name"], CODE),
        slug=check_slug(body["slug"], CODE),
        description=check_description(body.get("description"), CODE),
        sub_range_cidr=None if sub_range in (None, "") else str(parse_cidr(sub_range, CODE, "sub_range_cidr")),
    )


@dataclass(frozen=True)
class ProjectPatch:
    name: Any = _UNSET
    description: Any = _UNSET
    sub_range_cidr: Any = _UNSET  # a CIDR string, or None to release the reservation

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not _UNSET}


def parse_patch(body: dict[str, Any]) -> ProjectPatch:
    check_patch_keys(body, PATCH_FIELDS, "Project")
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = check_name(body["name"], CODE)
    if "description" in body:
        fields["description"] = check_description(body["description"], CODE)
    release = body.get("release_sub_range")
    if "release_sub_range" in body and not isinstance(release, bool):
        raise invalid("release_sub_range must be a boolean")
    if release and body.get("sub_range_cidr") not in (None, ""):
        raise ProblemError(422, "sub_range_invalidates_allocation",
                           "release_sub_range cannot be combined with a new sub_range_cidr")
    if release:
        fields["sub_range_cidr"] = None
    elif "sub_range_cidr" in body:
        value = body["sub_range_cidr"]
        fields["sub_range_cidr"] = None if value in (None, "") else str(parse_cidr(value, CODE, "sub_range_cidr"))
    if not fields:
        # Only `release_sub_range: false`: nothing to do, which is what empty_patch means.
        raise ProblemError(400, "empty_patch", "the patch names no field to change")
    return ProjectPatch(**fields)


def check_sub_range(sub_range: str, domain_cidr: str, siblings: list[tuple[Any, str]]) -> None:
    """The reservation must sit inside the Domain CIDR (400 invalid_project) and overlap no
    sibling's (409 sub_range_overlap)."""
    sub = ipaddress.ip_network(sub_range)
    domain = ipaddress.ip_network(domain_cidr)
    if sub.version != domain.version or not sub.subnet_of(domain):  # type: ignore[arg-type]
        raise invalid(f"sub_range_cidr {sub_range} is not inside the Domain's mesh_cidr {domain_cidr}")
    for project_id, other in siblings:
        if ipaddress.ip_network(other).overlaps(sub):  # type: ignore[arg-type]
            raise ProblemError(409, "sub_range_overlap",
                               f"sub_range_cidr {sub_range} overlaps project {project_id}'s {other}")


def addresses_outside(sub_range: str, mesh_ips: list[str]) -> list[str]:
    sub = ipaddress.ip_network(sub_range)
    return [ip for ip in mesh_ips if ipaddress.ip_address(ip) not in sub]
