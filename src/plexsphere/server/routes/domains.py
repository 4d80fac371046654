"""Domains: /v1/domains (CreateDomain, ListDomains, GetDomain, PatchDomain, DeleteDomain)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from plexsphere.domain.errors import invalid_body
from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc, read_json
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.services import domains as service
from plexsphere.wire.tenancy import DomainCreateRequest, DomainList, DomainPatchRequest, DomainResponse

router = APIRouter(tags=["tenancy"])


async def read_object(request: Request) -> dict[str, Any]:
    """The JSON object body (8 KiB cap → 413, malformed or not an object → 400 invalid_body)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid_body("request body must be a JSON object")
    return body

LISTING = "domains"


@router.post("/v1/domains", operation_id="CreateDomain", status_code=201,
             responses={201: {"model": DomainResponse}}, openapi_extra=body_doc(DomainCreateRequest))
async def create_domain(request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    runtime = runtime_of(request)
    body = await read_object(request)
    domain = await service.create(runtime.pool, runtime.keyring, principal.subject, body)
    return JSONResponse(domain, status_code=201, headers={"Location": f"/v1/domains/{domain['id']}"})


@router.get("/v1/domains", operation_id="ListDomains", responses={200: {"model": DomainList}})
async def list_domains(
    request: Request,
    cursor: str | None = Query(default=None),
    limit: str | None = Query(default=None, json_schema_extra={"type": "integer", "minimum": 1, "maximum": 200}),
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    runtime = runtime_of(request)
    page_size = parse_limit(limit)
    keyset = decode_cursor(runtime.keyring, principal.subject, LISTING, cursor)
    after = keyset[0] if keyset and isinstance(keyset[0], str) else None
    items, next_after, hidden_only = await service.list_page(runtime.pool, principal.subject, after, page_size)
    body = {
        "items": items,
        "next_cursor": encode_cursor(runtime.keyring, principal.subject, LISTING, [next_after]) if next_after else None,
        "empty_reason": "no_rebac_membership" if hidden_only else None,
    }
    return JSONResponse(body)


@router.get("/v1/domains/{id}", operation_id="GetDomain", responses={200: {"model": DomainResponse}})
async def get_domain(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                     ) -> JSONResponse:
    domain_id = service.parse_domain_id(id)
    return JSONResponse(await service.get(runtime_of(request).pool, principal.subject, domain_id))


@router.patch("/v1/domains/{id}", operation_id="PatchDomain", responses={200: {"model": DomainResponse}},
              openapi_extra=body_doc(DomainPatchRequest))
async def patch_domain(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                       ) -> JSONResponse:
    domain_id = service.parse_domain_id(id)
    body = await read_object(request)
    return JSONResponse(await service.patch(runtime_of(request).pool, principal.subject, domain_id, body))


@router.delete("/v1/domains/{id}", operation_id="DeleteDomain", status_code=204)
async def delete_domain(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)
                        ) -> Response:
    domain_id = service.parse_domain_id(id)
    await service.delete(runtime_of(request).pool, principal.subject, domain_id)
    return Response(status_code=204)
