"""Bridge relay wire models (the contract's BridgeRelay* and NodeStateBridge* schemas)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from plexsphere.wire.common import StrictRequest, WireModel


class BridgeRelayConfigureRequest(StrictRequest):
    enabled: bool
    listen_port: int = Field(ge=1, le=65535)


class BridgeRelayResponse(WireModel):
    resource_id: UUID
    enabled: bool
    listen_port: int
    created_at: datetime
    updated_at: datetime


class NodeStateBridgeRelayAssignment(WireModel):
    peer_node_id: UUID
    fallback_endpoint: str
    fallback_endpoint_port: int


class NodeStateBridgeRelay(WireModel):
    enabled: bool
    listen_port: int
    assignments: list[NodeStateBridgeRelayAssignment] = Field(default_factory=list)


class NodeStateBridge(WireModel):
    relay: NodeStateBridgeRelay | None = None
    user_access: dict | None = None
    ingress: dict | None = None
    site_to_site: dict | None = None


class Relay(WireModel):
    """Additive NodeStateSnapshot.relays entry: a relay of the Domain and the host:port Nodes dial."""

    node_id: UUID
    endpoint: str
