"""Identities: GET /v1/domains/{id}/identities and /v1/domains/{id}/identities/{principalId}."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.services import identities as service
from plexsphere.services.domains import parse_domain_id
from plexsphere.wire.tenancy import IdentityDetail, IdentityList

router = APIRouter(tags=["tenancy"])


@router.get("/v1/domains/{id}/identities", operation_id="ListIdentities", responses={200: {"model": IdentityList}})
async def list_identities(
    id: str,
    request: Request,
    kind: str | None = Query(default=None),
    cursor: str | None = Query(default=None),
    limit: str | None = Query(default=None, json_schema_extra={"type": "integer", "minimum": 1, "maximum": 200}),
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    runtime = runtime_of(request)
    domain_id = parse_domain_id(id)
    kind_filter = service.parse_kind(kind)
    page_size = parse_limit(limit)
    listing = f"identities:{domain_id}:{kind_filter or '*'}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    items, next_after = await service.list_page(runtime.pool, runtime.keyring, principal.subject, domain_id,
                                                kind_filter, keyset, page_size)
    return JSONResponse({
        "items": items,
        "next_cursor": encode_cursor(runtime.keyring, principal.subject, listing, next_after) if next_after else None,
    })


@router.get("/v1/domains/{id}/identities/{principalId}", operation_id="GetIdentity",
            responses={200: {"model": IdentityDetail}})
async def get_identity(id: str, principalId: str, request: Request,  # noqa: N803 (the contract's name)
                       principal: OperatorPrincipal = Depends(require_operator)) -> JSONResponse:
    runtime = runtime_of(request)
    domain_id = parse_domain_id(id)
    identity_id = service.parse_principal_id(principalId)
    return JSONResponse(await service.get(runtime.pool, runtime.keyring, principal.subject, domain_id, identity_id))
