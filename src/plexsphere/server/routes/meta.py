from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from plexsphere import __version__
from plexsphere.server.auth import runtime_of
from plexsphere.timeutil import rfc3339

router = APIRouter(tags=["meta"])

GIT_COMMIT = "unknown"


@router.get("/v1/health", operation_id="GetHealth")
async def get_health(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    checks = []
    try:
        await runtime.pool.fetchval("SELECT 1")
        checks.append({"name": "datastore", "status": "ok", "detail": "postgresql reachable"})
    except (OSError, asyncpg.PostgresError) as exc:
        checks.append({"name": "datastore", "status": "down", "detail": type(exc).__name__})
    status = "ok" if all(c["status"] == "ok" for c in checks) else "down"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if status == "ok" else 503)


@router.get("/v1/version", operation_id="GetVersion")
async def get_version(request: Request) -> dict:
    return {"version": __version__, "commit": GIT_COMMIT, "date": rfc3339(runtime_of(request).started_at)}
