"""Mesh-key rotation: the operator's preview and trigger, the Node's completion, and a Node's
rotation history (our addition)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from plexsphere.domain import rotation as rules
from plexsphere.server.auth import (
    NodePrincipal,
    OperatorPrincipal,
    require_node,
    require_operator,
    runtime_of,
)
from plexsphere.server.body import NODE_BODY_LIMIT, body_doc, json_body
from plexsphere.server.pagination import parse_limit
from plexsphere.services import rotation as service
from plexsphere.wire.rotation import (
    KeyRotationList,
    KeysRotateRequest,
    KeysRotateResponse,
    RotationImpactPreview,
    RotationTriggerResponse,
)

router = APIRouter(tags=["mesh"])

Operator = Annotated[OperatorPrincipal, Depends(require_operator)]
Node = Annotated[NodePrincipal, Depends(require_node("unauthorized"))]
# Declared after the Node dependency, so the contract's order holds: 401 → 413 → 400.
KeysRotateBody = Annotated[
    KeysRotateRequest,
    Depends(json_body(
        KeysRotateRequest,
        limit=NODE_BODY_LIMIT,
        too_large_code="keys_rotate_body_too_large",
        malformed_code="malformed_keys_rotate_request",
    )),
]


@router.get(
    "/v1/nodes/{id}/keys/rotate/preview",
    operation_id="GetNodeKeysRotatePreview",
    response_model=RotationImpactPreview,
)
async def get_node_keys_rotate_preview(id: uuid.UUID, request: Request, principal: Operator) -> dict:
    return await service.preview(runtime_of(request).pool, principal.subject, id)


@router.post(
    "/v1/nodes/{id}/keys/rotate",
    operation_id="PostNodeKeysRotate",
    response_model=RotationTriggerResponse,
)
async def post_node_keys_rotate(id: uuid.UUID, request: Request, principal: Operator) -> dict:
    return await service.trigger(runtime_of(request), principal.subject, id)


@router.post(
    "/v1/keys/rotate",
    operation_id="PostKeysRotate",
    response_model=KeysRotateResponse,
    openapi_extra=body_doc(KeysRotateRequest),
)
async def post_keys_rotate(request: Request, node: Node, body: KeysRotateBody) -> dict:
    new_key = rules.parse_new_public_key(body.new_public_key)  # 422 before any database read
    receipt = await service.complete(runtime_of(request), node.node_id, new_key)
    return {"rotation_id": str(receipt.rotation_id), "kid": receipt.kid, "wrap_key_version": receipt.wrap_key_version}


@router.get(
    "/v1/nodes/{id}/keys/rotations",
    operation_id="ListNodeKeyRotations",
    response_model=KeyRotationList,
)
async def list_node_key_rotations(
    id: uuid.UUID,
    request: Request,
    principal: Operator,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[str | None, Query()] = None,
) -> dict:
    return await service.history(runtime_of(request), principal.subject, id, limit=parse_limit(limit), cursor=cursor)
