from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from plexsphere.wire.common import StrictRequest, WireModel

TokenKind = Literal["node", "bridge"]


class BootstrapTokenIssueRequest(StrictRequest):
    kind: TokenKind
    env_prefix: str = Field(min_length=1, max_length=32, pattern=r"^[a-z]+$")
    ttl_seconds: int = Field(ge=300, le=86400)


class BootstrapTokenIssueResponse(WireModel):
    token_id: UUID
    token: str
    issued_at: datetime
    expires_at: datetime


class BootstrapTokenMetadata(WireModel):
    id: UUID
    project_id: UUID
    kind: TokenKind
    env_prefix: str
    issued_at: datetime
    expires_at: datetime
    consumed_at: datetime | None = None
    revoked_at: datetime | None = None
    issued_by_user_id: UUID


class BootstrapTokenList(WireModel):
    items: list[BootstrapTokenMetadata]
    next_cursor: str | None = None


class RegisterRequest(WireModel):
    # Validated field by field in the service so each failure gets its contract code and order.
    project_id: str
    resource_id: str
    bootstrap_token: str
    nonce: str
    public_key: str
    requested_resource_id: str | None = None


class RegisterPeer(WireModel):
    node_id: UUID
    mesh_ip: str
    public_key: str
    fallback_endpoint: str | None = None
    endpoint: str | None = None  # DECISIONS 7: additive, the peer's last reported underlay endpoint
    nat_type: str | None = None  # additive: the peer's last reported NAT type (docs/nat.md)
    kind: str | None = None  # additive: `bridge` for bridge Nodes (reached directly, never relayed)


class RegisterResponse(WireModel):
    node_id: UUID
    mesh_ip: str
    signing_public_key: str
    signing_key_id: str
    nsk: str
    peer_snapshot: list[RegisterPeer]
    domain_mesh_cidr: str
