"""Wire models for tenancy and authorization: Domains, Projects, Resources, identities, ReBAC.

Request models document the bodies in our /v1/openapi.json; the routes validate bodies with the
pure rules in domain/ so the contract's specific error codes are chosen there."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plexsphere.wire.common import WireModel

SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


class DomainReachabilityPolicy(WireModel):
    heartbeat_interval: str
    stale_after: str
    unreachable_after: str


class DomainCreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    slug: str = Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)
    mesh_cidr: str
    description: str | None = Field(default=None, max_length=1024)
    region: str | None = Field(default=None, max_length=64, pattern=SLUG_PATTERN)
    reachability: DomainReachabilityPolicy | None = None
    env: str | None = Field(default=None, pattern=r"^[a-z]+$", description="signing key id segment; default dev")
    max_key_age: str | None = Field(default=None, description="Go duration; unattended key renewal, off when unset")


class DomainPatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1024)
    region: str | None = Field(default=None, max_length=64)
    mesh_cidr: str | None = None
    reachability: DomainReachabilityPolicy | None = None
    max_key_age: str | None = None


class DomainResponse(WireModel):
    id: str
    name: str
    slug: str
    description: str = ""
    region: str | None = None
    mesh_cidr: str
    reachability: DomainReachabilityPolicy
    env: str | None = None
    max_key_age: str | None = None
    created_at: str
    updated_at: str


class DomainList(WireModel):
    items: list[DomainResponse]
    next_cursor: str | None = None
    empty_reason: Literal["no_rebac_membership"] | None = None


class ProjectCreateRequest(BaseModel):
    domain_id: str
    name: str = Field(min_length=1, max_length=255)
    slug: str = Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)
    description: str | None = Field(default=None, max_length=1024)
    sub_range_cidr: str | None = None


class ProjectPatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=1024)
    sub_range_cidr: str | None = None
    release_sub_range: bool | None = None


class ProjectResponse(WireModel):
    id: str
    domain_id: str
    name: str
    slug: str
    description: str = ""
    sub_range_cidr: str | None = None
    created_at: str
    updated_at: str


class ProjectList(WireModel):
    items: list[ProjectResponse]
    next_cursor: str | None = None
    empty_reason: Literal["no_rebac_membership"] | None = None


class ResourceCreateRequest(BaseModel):
    origin: Literal["adopted", "provisioned"]
    kind: str = Field(min_length=1, max_length=64)
    external_ref: str | None = Field(default=None, min_length=1, max_length=256)
    handle: str | None = Field(default=None, min_length=1, max_length=256,
                               description="platform handle Nodes enrol against; default external_ref, else the id")
    blueprint_version_id: str | None = None
    cloud_credential_id: str | None = None
    parameters: dict[str, Any] | None = None


class ResourceResponse(WireModel):
    id: str
    project_id: str
    domain_id: str
    kind: str
    origin: Literal["adopted", "provisioned"]
    external_ref: str | None = None
    handle: str | None = None
    created_at: str
    updated_at: str


class ResourceList(WireModel):
    items: list[ResourceResponse]
    next_cursor: str | None = None


class IdentitySummary(WireModel):
    id: str
    kind: Literal["user", "service-identity"]
    domain_id: str
    display_name: str
    external_subject_pseudonym: str
    last_sign_in_at: str | None = None
    created_at: str


class IdentityDetail(IdentitySummary):
    updated_at: str
    external_subject: str | None = None
    email: str | None = None


class IdentityList(WireModel):
    items: list[IdentitySummary]
    next_cursor: str | None = None


class RebacCheckRequest(BaseModel):
    subject: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    caveat_context: dict[str, Any] | None = None


class RebacCheckResponse(WireModel):
    decision: Literal["allowed", "denied"]
    correlation_id: str
    relation_path: list[str] | None = None
    reason: str | None = None


class LookupResourcesRequest(BaseModel):
    subject: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    resource_type: str = Field(min_length=1)
    caveat_context: dict[str, Any] | None = None


class LookupSubjectsRequest(BaseModel):
    subject_type: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    caveat_context: dict[str, Any] | None = None


class RebacLookupResponse(WireModel):
    items: list[str]
    correlation_id: str


class RelationTupleRequest(BaseModel):
    subject: str = Field(min_length=1)
    relation: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    caveat_name: str | None = None
    caveat_context: dict[str, Any] | None = None


class RelationTuple(WireModel):
    id: str
    subject: str
    relation: str
    resource: str
    caveat_context: dict[str, Any] | None = None
    created_at: str


class RelationTupleList(WireModel):
    items: list[RelationTuple]
    next_cursor: str | None = None
