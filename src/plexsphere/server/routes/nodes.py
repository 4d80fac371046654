"""Node routes: the operator's inventory (list, get, delete) and the Node's own mesh surface
(state, heartbeat, endpoint, reachability, pairwise PSKs)."""

from __future__ import annotations

import uuid

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from plexsphere import crypto
from plexsphere.domain.errors import ProblemError
from plexsphere.ids import parse_uuid
from plexsphere.server.auth import (
    NodePrincipal,
    OperatorPrincipal,
    any_caller,
    bearer_token,
    ensure_same_node,
    require_node,
    require_operator,
    runtime_of,
)
from plexsphere.server.body import NODE_BODY_LIMIT, body_doc, read_json
from plexsphere.server.pagination import decode_cursor, encode_cursor, parse_limit
from plexsphere.services import authz, nodes, peers, reachability
from plexsphere.timeutil import utcnow
from plexsphere.wire.mesh import (
    EndpointRequest,
    EndpointResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    NodeList,
    NodeStateSnapshot,
    NodeSummary,
    Reachability,
)

router = APIRouter(tags=["nodes"])

HEARTBEAT_BODY_LIMIT = 16 * 1024


def json_response(body: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def parse_node_id(text: str) -> uuid.UUID:
    node_id = parse_uuid(text)
    if node_id is None:
        raise ProblemError(400, "invalid_node_id", "node id must be a UUID")
    return node_id


def own_node(principal: NodePrincipal, text: str, code: str = "node_id_mismatch") -> uuid.UUID:
    """The NSK's node, which must be the path's (403 `code` otherwise)."""
    path_id = parse_uuid(text)
    # Compared as UUIDs, so an upper-case spelling of the Node's own id is still its own.
    ensure_same_node(principal, path_id if path_id is not None else text, code)
    return principal.node_id


async def require_on_node(request: Request, subject: str, permission: str, node_id: uuid.UUID,
                          denied_code: str = "permission_denied") -> None:
    await authz.require_on_node(runtime_of(request).pool, subject, permission, node_id, denied_code)


async def agent_access(request: Request, principal: OperatorPrincipal | NodePrincipal, text: str,
                       denied_code: str | None = None) -> uuid.UUID:
    """`node-agent` gate, before existence: the Node itself by its NSK, or an operator holding the
    permission on `node:<id>`. A route whose contract names its 403 code passes it, and every
    caller that lacks the relation gets that code."""
    if isinstance(principal, NodePrincipal):
        return own_node(principal, text, denied_code or "node_id_mismatch")
    node_id = parse_node_id(text)
    await require_on_node(request, principal.subject, "node-agent", node_id, denied_code or "permission_denied")
    return node_id


# -- operator inventory ---------------------------------------------------------------------------
@router.get("/v1/nodes", operation_id="ListNodes", response_model=NodeList)
async def list_nodes(
    request: Request,
    principal: OperatorPrincipal = Depends(require_operator),
    cursor: str | None = None,
    limit: str | None = Query(None, description="1–200, default 50"),
    domain_id: str | None = None,
    project_id: str | None = None,
) -> Response:
    runtime = runtime_of(request)
    page_size = parse_limit(limit)
    domain = _filter(domain_id, "invalid_domain_filter", "domain_id")
    project = _filter(project_id, "invalid_project_filter", "project_id")
    listing = f"nodes:{domain}:{project}"
    keyset = decode_cursor(runtime.keyring, principal.subject, listing, cursor)
    after = parse_uuid(str(keyset[0])) if keyset else None
    if keyset and after is None:
        raise ProblemError(400, "invalid_cursor", "cursor is malformed or was not issued by this server")
    items, last = await nodes.list_nodes(runtime.pool, principal.subject, domain_id=domain, project_id=project,
                                         after=after, limit=page_size)
    next_cursor = encode_cursor(runtime.keyring, principal.subject, listing, [str(last)]) if last else None
    return json_response({"items": items, "next_cursor": next_cursor})


def _filter(value: str | None, code: str, name: str) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    parsed = parse_uuid(value)
    if parsed is None:
        raise ProblemError(400, code, f"{name} must be a UUID")
    return parsed


@router.get("/v1/nodes/{id}", operation_id="GetNode", response_model=NodeSummary)
async def get_node(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> Response:
    runtime = runtime_of(request)
    node_id = parse_node_id(id)
    await require_on_node(request, principal.subject, "node-view", node_id)
    return json_response(await nodes.get_node(runtime.pool, node_id))


@router.delete("/v1/nodes/{id}", operation_id="DeleteNode", status_code=204)
async def delete_node(id: str, request: Request, principal: OperatorPrincipal = Depends(require_operator)) -> Response:
    runtime = runtime_of(request)
    node_id = parse_node_id(id)
    await require_on_node(request, principal.subject, "node-operate", node_id)
    await nodes.delete_node(runtime.pool, runtime.signing, node_id)
    return Response(status_code=204)


# -- the Node's own surface -----------------------------------------------------------------------
@router.get("/v1/nodes/{id}/state", operation_id="GetNodeState", response_model=NodeStateSnapshot, tags=["mesh"])
async def get_node_state(id: str, request: Request, principal=Depends(any_caller)) -> Response:
    node_id = await agent_access(request, principal, id)
    runtime = runtime_of(request)
    return json_response(await nodes.node_state(runtime.pool, node_id, stun_port=runtime.settings.stun_port))


@router.post("/v1/nodes/{id}/heartbeat", operation_id="PostNodeHeartbeat", response_model=HeartbeatResponse,
             openapi_extra=body_doc(HeartbeatRequest), tags=["mesh"])
async def post_heartbeat(id: str, request: Request,
                         principal: NodePrincipal = Depends(require_node("nsk_revoked"))) -> Response:
    node_id = own_node(principal, id)
    body = await read_json(request, limit=HEARTBEAT_BODY_LIMIT, too_large_code="heartbeat_body_too_large",
                           malformed_code="malformed_heartbeat_request")
    return json_response(await reachability.record_heartbeat(runtime_of(request).pool, node_id, body, utcnow()))


@router.put("/v1/nodes/{id}/endpoint", operation_id="PutNodeEndpoint", response_model=EndpointResponse,
            openapi_extra=body_doc(EndpointRequest), tags=["mesh"])
async def put_endpoint(id: str, request: Request,
                       principal: NodePrincipal = Depends(require_node("nsk_revoked"))) -> Response:
    node_id = own_node(principal, id)
    body = await read_json(request, limit=NODE_BODY_LIMIT, too_large_code="endpoint_body_too_large",
                           malformed_code="malformed_endpoint_request")
    runtime = runtime_of(request)
    return json_response(await peers.report_endpoint(runtime.pool, runtime.signing, node_id, principal.domain_id,
                                                     body, utcnow()))


@router.get("/v1/nodes/{id}/reachability", operation_id="GetNodeReachability", response_model=Reachability,
            tags=["mesh"])
async def get_reachability(id: str, request: Request, principal=Depends(any_caller)) -> Response:
    node_id = await agent_access(request, principal, id, denied_code="insufficient_relation")
    return json_response(await reachability.get_reachability(runtime_of(request).pool, node_id))


@router.get(
    "/v1/nodes/{id}/peers/{peer_node_id}/psk", operation_id="GetNodePeerPsk", tags=["mesh"],
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "12-byte nonce ‖ AES-256-GCM(edge PSK ‖ tag) under the caller's NSK"}},
)
async def get_peer_psk(id: str, peer_node_id: str, request: Request,
                       principal: NodePrincipal = Depends(require_node("unauthorized"))) -> Response:
    node_id = own_node(principal, id)
    peer_id = parse_uuid(peer_node_id)
    if peer_id is None:
        raise ProblemError(404, "peer_not_found", "peer not found")
    credential = crypto.parse_nsk_bearer(bearer_token(request) or "")
    runtime = runtime_of(request)
    sealed = await nodes.sealed_peer_psk(runtime.pool, runtime.keyring, node_id, principal.domain_id, peer_id,
                                         credential.nsk)
    return Response(sealed.envelope, media_type="application/octet-stream", headers={
        "X-Plexsphere-PSK-KID": sealed.kid,
        "X-Plexsphere-PSK-Epoch": str(sealed.epoch),
        "Cache-Control": "no-store",
    })
