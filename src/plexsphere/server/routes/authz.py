"""ReBAC API: /v1/authz/check, lookup-resources, lookup-subjects, relation-tuples."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.server.routes.domains import read_object
from plexsphere.services import authz as service
from plexsphere.wire.tenancy import (
    LookupResourcesRequest,
    LookupSubjectsRequest,
    RebacCheckRequest,
    RebacCheckResponse,
    RebacLookupResponse,
    RelationTuple,
    RelationTupleList,
    RelationTupleRequest,
)

router = APIRouter(tags=["authz"])


@router.post("/v1/authz/check", operation_id="PostAuthzCheck", responses={200: {"model": RebacCheckResponse}},
             openapi_extra=body_doc(RebacCheckRequest))
async def post_check(request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    body = await read_object(request)
    return JSONResponse(await service.api_check(runtime_of(request).pool, principal.subject, body))


@router.post("/v1/authz/lookup-resources", operation_id="PostAuthzLookupResources",
             responses={200: {"model": RebacLookupResponse}}, openapi_extra=body_doc(LookupResourcesRequest))
async def post_lookup_resources(request: Request, principal: OperatorPrincipal = Depends(require_operator)
                                ) -> JSONResponse:
    body = await read_object(request)
    return JSONResponse(await service.api_lookup_resources(runtime_of(request).pool, principal.subject, body))


@router.post("/v1/authz/lookup-subjects", operation_id="PostAuthzLookupSubjects",
             responses={200: {"model": RebacLookupResponse}}, openapi_extra=body_doc(LookupSubjectsRequest))
async def post_lookup_subjects(request: Request, principal: OperatorPrincipal = Depends(require_operator)
                               ) -> JSONResponse:
    body = await read_object(request)
    return JSONResponse(await service.api_lookup_subjects(runtime_of(request).pool, principal.subject, body))


@router.get("/v1/authz/relation-tuples", operation_id="ListRelationTuples",
            responses={200: {"model": RelationTupleList}})
async def list_relation_tuples(
    request: Request,
    project_id: str | None = Query(default=None),
    cursor: str | None = Query(default=None),
    limit: str | None = Query(default=None, json_schema_extra={"type": "integer", "minimum": 1, "maximum": 200}),
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    runtime = runtime_of(request)
    pid = service.parse_project_param(project_id)
    page_size = parse_limit(limit)
    listing = f"relation-tuples:{pid}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    items, next_after = await service.list_tuples(runtime.pool, principal.subject, pid, keyset, page_size)
    return JSONResponse({
        "items": items,
        "next_cursor": encode_cursor(runtime.keyring, principal.subject, listing, next_after) if next_after else None,
    })


@router.post("/v1/authz/relation-tuples", operation_id="CreateRelationTuple", status_code=201,
             responses={201: {"model": RelationTuple}}, openapi_extra=body_doc(RelationTupleRequest))
async def create_relation_tuple(request: Request, project_id: str | None = Query(default=None),
                                principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    pid = service.parse_project_param(project_id)
    body = await read_object(request)
    created = await service.create_tuple(runtime_of(request).pool, principal.subject, pid, body)
    return JSONResponse(created, status_code=201,
                        headers={"Location": f"/v1/authz/relation-tuples/{created['id']}"})


@router.patch("/v1/authz/relation-tuples/{id}", operation_id="PatchRelationTuple",
              responses={200: {"model": RelationTuple}}, openapi_extra=body_doc(RelationTupleRequest))
async def patch_relation_tuple(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                               ) -> JSONResponse:
    tuple_id = service.parse_tuple_id(id)
    body = await read_object(request)
    return JSONResponse(await service.replace_tuple(runtime_of(request).pool, principal.subject, tuple_id, body))


@router.delete("/v1/authz/relation-tuples/{id}", operation_id="DeleteRelationTuple", status_code=204)
async def delete_relation_tuple(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                                ) -> Response:
    tuple_id = service.parse_tuple_id(id)
    await service.delete_tuple(runtime_of(request).pool, principal.subject, tuple_id)
    return Response(status_code=204)
