from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from plexsphere.wire.bridge import NodeStateBridge, Relay
from plexsphere.wire.common import StrictRequest, WireModel
from plexsphere.wire.enrolment import RegisterPeer

ReachabilityState = Literal["healthy", "stale", "unreachable"]
NatType = Literal["full_cone", "restricted", "port_restricted", "symmetric", "unknown"]


class NodeSummary(WireModel):
    id: UUID
    domain_id: UUID
    created_at: datetime
    name: str | None = None
    kind: str | None = None
    # Additive fields (operators want them in `plexctl node list`); clients from the spec ignore them.
    project_id: UUID | None = None
    mesh_ip: str | None = None
    reachability: ReachabilityState | None = None
    endpoint: str | None = None
    nat_type: NatType | None = None


class NodeList(WireModel):
    items: list[NodeSummary]
    next_cursor: str | None = None


class NodeStatePeer(RegisterPeer):
    pass


class Reachability(WireModel):
    state: ReachabilityState
    last_heartbeat_at: datetime | None = None
    changed_at: datetime


class StateEntry(WireModel):
    key: str
    value: str
    workload_tag: str | None = None


class NodeStateReports(WireModel):
    metadata: list[StateEntry] = Field(default_factory=list)
    data: list[StateEntry] = Field(default_factory=list)
    reports: list[StateEntry] = Field(default_factory=list)


class NodeStateSnapshot(WireModel):
    peers: list[NodeStatePeer]
    reachability: Reachability
    policy: dict[str, Any] | None
    bridge: NodeStateBridge | None
    state: NodeStateReports | None
    reports: NodeStateReports | None
    heartbeat_interval: str | None = None  # additive: the Domain's cadence as a Go duration
    relays: list[Relay] = Field(default_factory=list)  # additive: the Domain's relays, preferred first
    stun_port: int | None = None  # additive: the control plane's STUN responder (docs/nat.md)


class HeartbeatRequest(StrictRequest):
    client_now: str
    binary_checksum: str
    binary_version: str
    nat_summary: dict[str, Any]


class HeartbeatResponse(WireModel):
    accepted_at: datetime
    reconcile: bool
    rotate_keys: bool


class EndpointRequest(StrictRequest):
    endpoint: str
    nat_type: str
    reported_at: str


class EndpointResponse(WireModel):
    accepted_at: datetime
    stale_after: datetime


class MeshTopologyNode(WireModel):
    node_id: UUID
    mesh_ip: str
    reachability: ReachabilityState


class MeshEdge(WireModel):
    source_node_id: UUID
    target_node_id: UUID
    mode: Literal["direct", "relayed"]
    relay_node_id: UUID | None
    status: ReachabilityState


class MeshTopology(WireModel):
    domain_id: UUID
    generated_at: datetime
    nodes: list[MeshTopologyNode]
    edges: list[MeshEdge]


class EventEnvelope(WireModel):
    """DECISIONS 5: signed once per event; `signature` = Ed25519 over the JCS form of the rest."""

    id: UUID
    type: str
    scope: str
    key_id: str
    issued_at: str
    payload: dict[str, Any]
    signature: str
