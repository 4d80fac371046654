"""`GET /v1/nodes/{id}/events`: the Node's signed event stream (DECISIONS 5) over SSE.

Order of checks: authentication (401) → `node-agent` (403) → Last-Event-ID (400) → the Node exists
(404) → 200 and the stream: first the replay of (Last-Event-ID, start], then live frames from the
process's hub, a keep-alive comment after 25 s of silence."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from plexsphere.domain.errors import not_found
from plexsphere.domain.events import (
    API_VERSION,
    KEEPALIVE_FRAME,
    KEEPALIVE_INTERVAL_S,
    parse_last_event_id,
    sse_frame,
)
from plexsphere.server.auth import NodePrincipal, any_caller, runtime_of
from plexsphere.server.routes.nodes import agent_access
from plexsphere.server.sse import Hub, Stream, hub_of
from plexsphere.services import events

router = APIRouter(tags=["mesh"])


@router.get(
    "/v1/nodes/{id}/events", operation_id="GetNodeEvents", response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                     "description": "signed event envelopes as SSE frames"}},
)
async def get_node_events(
    id: str, request: Request, principal=Depends(any_caller),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> StreamingResponse:
    node_id = await agent_access(request, principal, id)
    after = parse_last_event_id(last_event_id)
    runtime = runtime_of(request)
    if isinstance(principal, NodePrincipal):
        domain_id = principal.domain_id
    else:
        domain_id = await runtime.pool.fetchval("SELECT domain_id FROM nodes WHERE id = $1", node_id)
        if domain_id is None:
            raise not_found("node_not_found", "node")
    hub = hub_of(runtime)
    stream, start = await hub.subscribe(node_id, domain_id)
    return StreamingResponse(
        _frames(hub, stream, runtime.pool, domain_id, node_id, after, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Plexsphere-API-Version": API_VERSION, "X-Accel-Buffering": "no"},
    )


async def _frames(hub: Hub, stream: Stream, pool, domain_id: uuid.UUID, node_id: uuid.UUID, after: int | None,
                  start: int) -> AsyncIterator[bytes]:
    try:
        if after is not None:
            while after < start:
                rows = await events.replay_for_node(pool, domain_id, node_id, after, start)
                if not rows:
                    break
                yield b"".join(sse_frame(r["seq"], r["type"], r["envelope"]) for r in rows)
                after = rows[-1]["seq"]
        while True:
            chunk = await stream.next_chunk(KEEPALIVE_INTERVAL_S)
            if chunk is None:
                yield KEEPALIVE_FRAME
            elif chunk:
                yield chunk
            elif stream.ended:
                return
    finally:
        hub.unsubscribe(stream)
