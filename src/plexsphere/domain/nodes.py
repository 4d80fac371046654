"""Rules for what Nodes send about themselves (heartbeats, endpoint reports) and for which Nodes an
operator may list. Pure: no I/O, `now` is passed in."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from plexsphere.domain import authz
from plexsphere.domain.errors import ProblemError
from plexsphere.timeutil import parse_rfc3339

MAX_CLOCK_SKEW = timedelta(seconds=60)
NAT_TYPES = frozenset({"full_cone", "restricted", "port_restricted", "symmetric", "unknown"})

_HEARTBEAT_FIELDS = frozenset({"client_now", "binary_checksum", "binary_version", "nat_summary"})
_ENDPOINT_FIELDS = frozenset({"endpoint", "nat_type", "reported_at"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PORT = re.compile(r"^[0-9]{1,5}$")


# -- heartbeat ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heartbeat:
    client_now: datetime
    binary_checksum: str  # lowercase hex of the 32-byte digest, whatever form was sent
    binary_version: str
    nat_summary: dict[str, Any]


def parse_binary_checksum(value: Any) -> bytes | None:
    """The 32-byte SHA-256 from 64 lowercase hex characters or 44-character padded base64."""
    if not isinstance(value, str):
        return None
    if _HEX64.match(value):
        return bytes.fromhex(value)
    if len(value) == 44 and value.endswith("="):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == 32 else None
    return None


def validate_heartbeat(body: Any, now: datetime) -> Heartbeat:
    malformed = "malformed_heartbeat_request"
    if not isinstance(body, dict):
        raise ProblemError(400, malformed, "heartbeat body must be a JSON object")
    unknown = sorted(set(body) - _HEARTBEAT_FIELDS)
    if unknown:
        raise ProblemError(400, malformed, f"unknown field(s): {', '.join(unknown)}")
    client_now = parse_rfc3339(body.get("client_now")) if "client_now" in body else None
    if client_now is None:
        raise ProblemError(400, malformed, "client_now is required and must be an RFC 3339 date-time")
    if not isinstance(body.get("nat_summary"), dict):
        raise ProblemError(400, malformed, "nat_summary is required and must be an object ({} is fine)")
    version = body.get("binary_version")
    if version is not None and not isinstance(version, str):
        raise ProblemError(400, malformed, "binary_version must be a string")
    drift = (client_now - now).total_seconds()
    if abs(drift) > MAX_CLOCK_SKEW.total_seconds():
        raise ProblemError(400, "clock_skew", f"client_now drifted by {round(drift)}s from server now; "
                           "heartbeats must be within +/-60s of server time.")
    checksum = parse_binary_checksum(body.get("binary_checksum"))
    if checksum is None:
        raise ProblemError(400, "binary_checksum_empty", "binary_checksum must be the 32-byte SHA-256 of the "
                           "running binary as 64 lowercase hex characters or 44-character padded base64")
    if version is None or not version.strip():
        raise ProblemError(400, "binary_version_empty", "binary_version must be non-empty")
    return Heartbeat(client_now, checksum.hex(), version.strip(), body["nat_summary"])


# -- endpoint -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointReport:
    endpoint: str  # canonical host:port ([v6]:port for IPv6)
    nat_type: str
    reported_at: datetime


def parse_endpoint(text: Any) -> str | None:
    """Canonical `host:port` for a routable IPv4 dotted quad or bracketed IPv6 address, port
    1–65535; None for hostnames, loopback, link-local, unspecified, multicast or broadcast hosts."""
    if not isinstance(text, str) or not text or text != text.strip():
        return None
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or "%" in host:
            return None
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or host.count(".") != 3:
            return None
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            return None
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        return None
    effective = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    if (effective.is_loopback or effective.is_link_local or effective.is_unspecified or effective.is_multicast
            or effective == ipaddress.IPv4Address("255.255.255.255")):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return f"[{address.compressed}]:{int(port)}"
    return f"{address}:{int(port)}"


def validate_endpoint(body: Any, now: datetime, endpoint_ttl_s: int) -> EndpointReport:
    malformed = "malformed_endpoint_request"
    if not isinstance(body, dict):
        raise ProblemError(400, malformed, "endpoint body must be a JSON object")
    unknown = sorted(set(body) - _ENDPOINT_FIELDS)
    if unknown:
        raise ProblemError(400, malformed, f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(_ENDPOINT_FIELDS - set(body))
    if missing:
        raise ProblemError(400, malformed, f"missing required field(s): {', '.join(missing)}")
    if not isinstance(body["endpoint"], str) or not body["endpoint"]:
        raise ProblemError(400, malformed, "endpoint must be a non-empty string")
    if body["nat_type"] not in NAT_TYPES:
        raise ProblemError(400, malformed, f"nat_type must be one of {', '.join(sorted(NAT_TYPES))}")
    reported_at = parse_rfc3339(body["reported_at"])
    if reported_at is None:
        raise ProblemError(400, malformed, "reported_at must be an RFC 3339 date-time")
    drift = (reported_at - now).total_seconds()
    if abs(drift) > MAX_CLOCK_SKEW.total_seconds():
        raise ProblemError(400, "endpoint_clock_skew", f"reported_at drifted by {round(drift)}s from server now; "
                           "reports must be within +/-60s of server time.")
    if now - reported_at > timedelta(seconds=endpoint_ttl_s):
        raise ProblemError(400, "endpoint_clock_skew", "reported_at is older than the Domain's endpoint TTL")
    endpoint = parse_endpoint(body["endpoint"])
    if endpoint is None:
        raise ProblemError(400, "endpoint_unparseable", "endpoint must be host:port with a routable IPv4 address "
                           "or bracketed IPv6 address and a port in 1..65535")
    return EndpointReport(endpoint, body["nat_type"], reported_at)


# -- list visibility ------------------------------------------------------------------------------
@dataclass
class Visibility:
    """Which Nodes a caller may read (`node-view`), from its own relation tuples alone: everything
    (platform view), Nodes of Domains or Projects it may view, or Nodes it is the agent of."""

    everything: bool = False
    domain_ids: set[str] = field(default_factory=set)
    project_ids: set[str] = field(default_factory=set)
    node_ids: set[str] = field(default_factory=set)


def visibility(tuples: Iterable[tuple[str, str, str]]) -> Visibility:
    """`tuples` are the caller's direct (object_type, object_id, relation) tuples."""
    grants = {
        "platform": authz.SCHEMA["platform"]["platform-view"].relations,
        "domain": authz.SCHEMA["domain"]["domain-view"].relations,
        "project": authz.SCHEMA["project"]["project-view"].relations,
        "node": authz.SCHEMA["node"]["node-view"].relations,
    }
    seen = Visibility()
    for object_type, object_id, relation in tuples:
        if relation not in grants.get(object_type, ()):
            continue
        if object_type == "platform":
            seen.everything = True
        elif object_type == "domain":
            seen.domain_ids.add(object_id)
        elif object_type == "project":
            seen.project_ids.add(object_id)
        else:
            seen.node_ids.add(object_id)
    return seen
