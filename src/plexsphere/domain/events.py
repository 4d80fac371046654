"""The node event stream (DECISIONS 5), minus the network: which events concern a Node, the SSE
frame bytes, and the Last-Event-ID rule. Pure."""

from __future__ import annotations

import re
import uuid

from plexsphere.domain.errors import ProblemError

KEEPALIVE_FRAME = b":keep-alive\n\n"
KEEPALIVE_INTERVAL_S = 25.0
API_VERSION = "v1"

_NON_NEGATIVE_INT = re.compile(r"^[0-9]{1,18}$")


def parse_last_event_id(value: str | None) -> int | None:
    """None (absent or empty: tail from now), or the sequence after which to replay. Anything but a
    non-negative integer is a 400 before the stream opens."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not _NON_NEGATIVE_INT.match(text):
        raise ProblemError(400, "invalid_last_event_id", "Last-Event-ID must be a non-negative integer")
    return int(text)


def concerns(node_id: uuid.UUID, target_node_id: uuid.UUID | None, exclude_node_id: uuid.UUID | None) -> bool:
    """An event is for every Node of its Domain, or only its target, never its excluded Node."""
    if exclude_node_id is not None and exclude_node_id == node_id:
        return False
    return target_node_id is None or target_node_id == node_id


def sse_frame(seq: int, event_type: str, envelope_json: str) -> bytes:
    """One SSE frame. The envelope is compact single-line JSON, so one `data:` line carries it."""
    if "\n" in envelope_json or "\r" in envelope_json:
        raise ValueError("envelope must be single-line JSON")
    return f"id: {seq}\nevent: {event_type}\ndata: {envelope_json}\n\n".encode()


def ends_stream_of(event_type: str, payload: dict) -> uuid.UUID | None:
    """The Node whose stream closes after this event (its own removal), if any."""
    if event_type != "peer_removed":
        return None
    try:
        return uuid.UUID(str(payload.get("node_id")))
    except ValueError:
        return None
