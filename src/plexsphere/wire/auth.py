"""Wire models of the auth surface (tenancy-auth §9) plus the local password sign-in."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, StrictInt, StrictStr

from plexsphere.wire.common import WireModel

EnvPrefix = Literal["dev", "stage", "prod"]


# -- local identity provider (not in the contract: see docs/decisions/auth.md) ---------------------
class LocalSignInRequest(WireModel):
    username: StrictStr = Field(min_length=1, max_length=255)
    password: StrictStr = Field(min_length=1, max_length=1024)


class LocalProvider(WireModel):
    """What an unauthenticated CLI needs to start a device login against the local provider."""

    domain_id: UUID
    methods: list[str]


# -- tokens ----------------------------------------------------------------------------------------
class ServiceTokenResponse(WireModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str | None = None


class Whoami(WireModel):
    principal_type: Literal["user", "service"]
    subject: str
    domain_id: UUID | None = None
    email: str | None = None
    acr: str | None = None
    amr: list[str] | None = None


# -- device flow (RFC 8628) ------------------------------------------------------------------------
class DeviceCodeRequest(WireModel):
    domain_id: UUID
    idp_binding_id: UUID | None = None
    idp_binding_alias: StrictStr | None = Field(default=None, max_length=64)
    client_id: StrictStr | None = Field(default=None, max_length=255)


class DeviceCodeResponse(WireModel):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class DeviceTokenRequest(WireModel):
    device_code: StrictStr = Field(min_length=1, max_length=512)
    client_id: StrictStr | None = Field(default=None, max_length=255)


class DeviceApproveRequest(WireModel):
    user_code: StrictStr = Field(pattern=r"^[A-Z2-7]{4}-?[A-Z2-7]{4}$")


class DeviceApproveResponse(WireModel):
    status: Literal["approved"] = "approved"


class DeviceDenyResponse(WireModel):
    status: Literal["denied"] = "denied"


# -- API tokens ------------------------------------------------------------------------------------
class APITokenSummary(WireModel):
    id: UUID
    env_prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    rotated_at: datetime | None = None


class APITokenIssueRequest(WireModel):
    identity_ref: StrictStr = Field(min_length=1, max_length=128)
    env_prefix: EnvPrefix
    ttl_seconds: StrictInt | None = None


class APITokenIssueResponse(WireModel):
    id: UUID
    plaintext: str
    env_prefix: str
    expires_at: datetime


class APITokenRotateResponse(APITokenIssueResponse):
    rotation_deadline: datetime
