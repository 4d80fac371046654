"""Resources: /v1/projects/{project_id}/resources and /v1/resources/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.server.routes.domains import read_object
from plexsphere.services import resources as service
from plexsphere.services.projects import parse_project_id
from plexsphere.wire.tenancy import ResourceCreateRequest, ResourceList, ResourceResponse

router = APIRouter(tags=["resource"])


@router.post("/v1/projects/{project_id}/resources", operation_id="CreateResource", status_code=201,
             responses={201: {"model": ResourceResponse}}, openapi_extra=body_doc(ResourceCreateRequest))
async def create_resource(project_id: str, request: Request,
                          principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    pid = parse_project_id(project_id)
    body = await read_object(request)
    resource = await service.create(runtime_of(request).pool, principal.subject, pid, body)
    return JSONResponse(resource, status_code=201, headers={"Location": f"/v1/resources/{resource['id']}"})


@router.get("/v1/projects/{project_id}/resources", operation_id="ListProjectResources",
            responses={200: {"model": ResourceList}})
async def list_resources(
    project_id: str,
    request: Request,
    cursor: str | None = Query(default=None),
    limit: str | None = Query(default=None, json_schema_extra={"type": "integer", "minimum": 1, "maximum": 200}),
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    runtime = runtime_of(request)
    pid = parse_project_id(project_id)
    page_size = parse_limit(limit)
    listing = f"resources:{pid}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    items, next_after = await service.list_page(runtime.pool, principal.subject, pid, keyset, page_size)
    return JSONResponse({
        "items": items,
        "next_cursor": encode_cursor(runtime.keyring, principal.subject, listing, next_after) if next_after else None,
    })


@router.get("/v1/resources/{id}", operation_id="GetResource", responses={200: {"model": ResourceResponse}})
async def get_resource(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                       ) -> JSONResponse:
    resource_id = service.parse_resource_id(id)
    return JSONResponse(await service.get(runtime_of(request).pool, principal.subject, resource_id))


@router.delete("/v1/resources/{id}", operation_id="DeleteResource", status_code=204)
async def delete_resource(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                          ) -> Response:
    resource_id = service.parse_resource_id(id)
    await service.delete(runtime_of(request).pool, principal.subject, resource_id)
    return Response(status_code=204)
