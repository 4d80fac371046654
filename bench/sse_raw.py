"""The physical limit for fan-out: a bare Starlette SSE broadcaster under the same uvicorn settings
as `plexsphere serve` (auto loop and HTTP implementations, no access log). No auth, no database,
no signing: one queue per stream, and POST /broadcast puts the request body on every queue.

    python -m bench.sse_raw PORT
"""

from __future__ import annotations

import asyncio
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

queues: set[asyncio.Queue] = set()


async def stream(request: Request) -> Response:
    queue: asyncio.Queue = asyncio.Queue()
    queues.add(queue)

    async def frames():
        try:
            yield b": open\n\n"
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def broadcast(request: Request) -> Response:
    body = await request.body()
    for queue in queues:
        queue.put_nowait(body)
    return PlainTextResponse(str(len(queues)))


async def health(request: Request) -> Response:
    return PlainTextResponse(str(len(queues)))


app = Starlette(routes=[Route("/stream", stream), Route("/broadcast", broadcast, methods=["POST"]),
                        Route("/health", health)])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
                lifespan="off")
