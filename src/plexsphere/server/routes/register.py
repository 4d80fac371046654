"""`POST /v1/register` — the unauthenticated enrolment seam. Any Authorization header is ignored:
the bootstrap token in the body is the credential."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from plexsphere.server.auth import runtime_of
from plexsphere.server.body import body_doc, read_json
from plexsphere.server.ratelimit import limit_register
from plexsphere.services import register as register_service
from plexsphere.wire.enrolment import RegisterRequest, RegisterResponse

router = APIRouter(tags=["bootstrap-tokens"])

REGISTER_BODY_LIMIT = 8 * 1024


@router.post(
    "/v1/register",
    operation_id="PostRegister",
    dependencies=[Depends(limit_register)],
    responses={200: {"model": RegisterResponse}},
    openapi_extra=body_doc(RegisterRequest),
)
async def post_register(request: Request) -> Response:
    body = await read_json(request, limit=REGISTER_BODY_LIMIT)
    result = await register_service.register(runtime_of(request), body)
    return Response(orjson.dumps(result), media_type="application/json", headers={"Cache-Control": "no-store"})


@router.post(
    "/v1/bridges/register",
    operation_id="PostBridgeRegister",
    dependencies=[Depends(limit_register)],
    responses={200: {"model": RegisterResponse}},
    openapi_extra=body_doc(RegisterRequest),
    description="The bridge bootstrap seam (additive; the contract names it but defines no route): the same "
                "body and answer as POST /v1/register, for `bridge` tokens. The Node binds to, or adopts, a "
                "Resource of kind `bridge`.",
)
async def post_bridge_register(request: Request) -> Response:
    body = await read_json(request, limit=REGISTER_BODY_LIMIT)
    result = await register_service.register(runtime_of(request), body, kind="bridge")
    return Response(orjson.dumps(result), media_type="application/json", headers={"Cache-Control": "no-store"})
