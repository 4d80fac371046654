"""Projects: /v1/projects (CreateProject, ListProjects, GetProject, PatchProject, DeleteProject)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from plexsphere.domain.errors import ProblemError
from plexsphere.ids import parse_uuid
from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.server.routes.domains import read_object
from plexsphere.services import projects as service
from plexsphere.wire.tenancy import ProjectCreateRequest, ProjectList, ProjectPatchRequest, ProjectResponse

router = APIRouter(tags=["tenancy"])


@router.post("/v1/projects", operation_id="CreateProject", status_code=201,
             responses={201: {"model": ProjectResponse}}, openapi_extra=body_doc(ProjectCreateRequest))
async def create_project(request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    body = await read_object(request)
    project = await service.create(runtime_of(request).pool, principal.subject, body)
    return JSONResponse(project, status_code=201, headers={"Location": f"/v1/projects/{project['id']}"})


@router.get("/v1/projects", operation_id="ListProjects", responses={200: {"model": ProjectList}})
async def list_projects(
    request: Request,
    domain_id: str | None = Query(default=None),
    cursor: str | None = Query(default=None),
    limit: str | None = Query(default=None, json_schema_extra={"type": "integer", "minimum": 1, "maximum": 200}),
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    runtime = runtime_of(request)
    domain_filter = None
    if domain_id is not None:
        domain_filter = parse_uuid(domain_id)
        if domain_filter is None:
            raise ProblemError(400, "invalid_domain_filter", "domain_id must be a UUID")
    page_size = parse_limit(limit)
    # The cursor is bound to the filter too: a page of one Domain's list cannot continue another's.
    listing = f"projects:{domain_filter or '*'}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    after = None
    if keyset is not None:
        if len(keyset) != 2 or not all(isinstance(k, str) for k in keyset) or parse_uuid(keyset[1]) is None:
            raise ProblemError(400, "invalid_cursor", "cursor is malformed")
        after = (keyset[0], keyset[1])
    items, next_after, hidden_only = await service.list_page(
        runtime.pool, principal.subject, domain_filter, after, page_size)
    return JSONResponse({
        "items": items,
        "next_cursor": encode_cursor(runtime.keyring, principal.subject, listing, list(next_after))
        if next_after else None,
        "empty_reason": "no_rebac_membership" if hidden_only else None,
    })


@router.get("/v1/projects/{id}", operation_id="GetProject", responses={200: {"model": ProjectResponse}})
async def get_project(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                      ) -> JSONResponse:
    project_id = service.parse_project_id(id)
    return JSONResponse(await service.get(runtime_of(request).pool, principal.subject, project_id))


@router.patch("/v1/projects/{id}", operation_id="PatchProject", responses={200: {"model": ProjectResponse}},
              openapi_extra=body_doc(ProjectPatchRequest))
async def patch_project(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                        ) -> JSONResponse:
    project_id = service.parse_project_id(id)
    body = await read_object(request)
    return JSONResponse(await service.patch(runtime_of(request).pool, principal.subject, project_id, body))


@router.delete("/v1/projects/{id}", operation_id="DeleteProject", status_code=204)
async def delete_project(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                         ) -> Response:
    project_id = service.parse_project_id(id)
    await service.delete(runtime_of(request).pool, principal.subject, project_id)
    return Response(status_code=204)
