"""Bridge relay configuration: /v1/projects/{project_id}/resources/{resource_id}/bridge/relay."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc, read_json
from plexsphere.services import relays
from plexsphere.services.projects import parse_project_id
from plexsphere.services.resources import parse_resource_id
from plexsphere.wire.bridge import BridgeRelayConfigureRequest, BridgeRelayResponse

router = APIRouter(tags=["bridge"])

BRIDGE_BODY_LIMIT = 8 * 1024
_PATH = "/v1/projects/{project_id}/resources/{resource_id}/bridge/relay"


@router.get(_PATH, operation_id="GetBridgeRelay", responses={200: {"model": BridgeRelayResponse}})
async def get_relay(project_id: str, resource_id: str, request: Request,
                    principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    pid, rid = parse_project_id(project_id), parse_resource_id(resource_id)
    return JSONResponse(await relays.get_config(runtime_of(request).pool, principal.subject, pid, rid))


@router.put(_PATH, operation_id="ConfigureBridgeRelay", responses={200: {"model": BridgeRelayResponse}},
            openapi_extra=body_doc(BridgeRelayConfigureRequest))
async def put_relay(project_id: str, resource_id: str, request: Request,
                    principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    pid, rid = parse_project_id(project_id), parse_resource_id(resource_id)
    body = await read_json(request, limit=BRIDGE_BODY_LIMIT, too_large_code="request_body_too_large",
                           malformed_code="invalid_body")
    runtime = runtime_of(request)
    return JSONResponse(await relays.put_config(runtime.pool, runtime.signing, principal.subject, pid, rid, body))


@router.delete(_PATH, operation_id="DeleteBridgeRelay", status_code=204,
               description="Additive: removes the relay configuration (idempotent).")
async def delete_relay(project_id: str, resource_id: str, request: Request,
                       principal: OperatorPrincipal = Depends(require_operator)) -> Response:
    pid, rid = parse_project_id(project_id), parse_resource_id(resource_id)
    runtime = runtime_of(request)
    await relays.delete_config(runtime.pool, runtime.signing, principal.subject, pid, rid)
    return Response(status_code=204)
