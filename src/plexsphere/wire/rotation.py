from __future__ import annotations

from datetime import datetime
from uuid import UUID

from plexsphere.wire.common import StrictRequest, WireModel


class RotationTriggerResponse(WireModel):
    rotation_id: UUID
    peer_id: UUID
    already_pending: bool


class RotationImpactEdge(WireModel):
    peer_node_id: UUID
    current_kid: str
    current_wrap_key_version: int


class RotationImpactPreview(WireModel):
    node_id: UUID
    peer_id: UUID
    affected_peer_count: int
    affected_edges: list[RotationImpactEdge]
    already_pending: bool
    estimated_duration_seconds: int


class KeysRotateRequest(StrictRequest):
    new_public_key: str


class KeysRotateResponse(WireModel):
    rotation_id: UUID
    kid: str
    wrap_key_version: int


class KeyRotation(WireModel):
    """One row of a Node's rotation history (`GET /v1/nodes/{id}/keys/rotations`, our addition)."""

    id: UUID
    node_id: UUID
    peer_id: UUID
    status: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None = None
    # The key the Node installed (public, so safe to show) and the receipt of the re-issued PSK;
    # set once completed.
    new_public_key: str | None = None
    kid: str | None = None
    wrap_key_version: int | None = None


class KeyRotationList(WireModel):
    items: list[KeyRotation]
    next_cursor: str | None = None
