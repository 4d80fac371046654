"""`GET /v1/domains/{domainId}/mesh/topology`: streamed, so a Domain of 1,000 Nodes (~1 M edges)
is served in flat memory."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from plexsphere.domain.errors import ProblemError
from plexsphere.ids import parse_uuid
from plexsphere.server.auth import OperatorPrincipal, require_operator, runtime_of
from plexsphere.services import authz, topology
from plexsphere.wire.mesh import MeshTopology

router = APIRouter(tags=["mesh"])


@router.get("/v1/domains/{domainId}/mesh/topology", operation_id="GetDomainMeshTopology",
            response_model=MeshTopology, response_class=StreamingResponse)
async def get_topology(domainId: str, request: Request, summary: bool = False,  # noqa: N803 (contract name)
                       principal: OperatorPrincipal = Depends(require_operator)) -> StreamingResponse:
    domain_id = parse_uuid(domainId)
    if domain_id is None:
        raise ProblemError(400, "invalid_domain_id", "domain id must be a UUID")
    runtime = runtime_of(request)
    await authz.require(runtime.pool, principal.subject, "domain-view", f"domain:{domain_id}")
    body = await topology.topology_stream(runtime.pool, domain_id, summary=summary)
    return StreamingResponse(body, media_type="application/json")
