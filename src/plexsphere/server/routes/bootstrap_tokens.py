"""Bootstrap token administration: `/v1/projects/{project_id}/bootstrap-tokens[/{id}]`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.server.body import body_doc, read_json
from plexsphere.server.pagination import parse_limit
from plexsphere.services import bootstrap_tokens as tokens_service
from plexsphere.wire.enrolment import (
    BootstrapTokenIssueRequest,
    BootstrapTokenIssueResponse,
    BootstrapTokenList,
    BootstrapTokenMetadata,
)

router = APIRouter(tags=["bootstrap-tokens"])

BASE = "/v1/projects/{project_id}/bootstrap-tokens"


@router.post(
    BASE,
    operation_id="IssueBootstrapToken",
    status_code=201,
    responses={201: {"model": BootstrapTokenIssueResponse}},
    openapi_extra=body_doc(BootstrapTokenIssueRequest),
)
async def issue_bootstrap_token(
    project_id: uuid.UUID, request: Request, principal: OperatorPrincipal = Depends(require_operator)
) -> JSONResponse:
    body = await read_json(request)
    issued = await tokens_service.issue(runtime_of(request), principal, project_id, body)
    # The plaintext is in this body only: keep it out of every cache.
    return JSONResponse(issued, status_code=201, headers={"Cache-Control": "no-store"})


@router.get(BASE, operation_id="ListBootstrapTokens", response_model=BootstrapTokenList,
            response_model_exclude_none=True)
async def list_bootstrap_tokens(
    project_id: uuid.UUID, request: Request, cursor: str | None = None, limit: str | None = None,
    principal: OperatorPrincipal = Depends(require_operator),
) -> JSONResponse:
    page = await tokens_service.list_page(runtime_of(request), principal, project_id, cursor, parse_limit(limit))
    return JSONResponse(page)


@router.get(BASE + "/{id}", operation_id="GetBootstrapTokenMetadata", response_model=BootstrapTokenMetadata)
async def get_bootstrap_token(
    project_id: uuid.UUID, id: uuid.UUID, request: Request, principal: OperatorPrincipal = Depends(require_operator)
) -> JSONResponse:
    return JSONResponse(await tokens_service.get(runtime_of(request), principal, project_id, id))


@router.delete(BASE + "/{id}", operation_id="RevokeBootstrapToken", status_code=204)
async def revoke_bootstrap_token(
    project_id: uuid.UUID, id: uuid.UUID, request: Request, principal: OperatorPrincipal = Depends(require_operator)
) -> Response:
    await tokens_service.revoke(runtime_of(request), principal, project_id, id)
    return Response(status_code=204)
