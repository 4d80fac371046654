"""The single place where errors become application/problem+json responses."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from plexsphere.domain.errors import PermissionDeniedError, ProblemError
from plexsphere.ids import uuid7

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    return "https://plexsphere.com/errors/" + code.replace("_", "-")


def problem_body(exc: ProblemError, instance: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(exc.code),
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": instance,
        "code": exc.code,
    }
    if isinstance(exc, PermissionDeniedError):
        body["reason"] = exc.reason
        body["relation_path"] = exc.relation_path
        body["correlation_id"] = exc.correlation_id or f"rebac-{uuid7()}"
    body.update(exc.extensions)
    return body


def problem_response(exc: ProblemError, instance: str) -> Response:
    return Response(
        content=orjson.dumps(problem_body(exc, instance)),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers,
    )


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        locations = {e.get("loc", ("",))[0] for e in errors}
        code = "invalid_body" if "body" in locations else "invalid_request"
        if "query" in locations and any(e.get("loc", ("", ""))[1:2] == ("limit",) for e in errors):
            code = "invalid_limit"
        return problem_response(ProblemError(400, code, _validation_detail(errors)), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 413: "request_body_too_large"}
        code = codes.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return problem_response(ProblemError(exc.status_code, code, detail), request.url.path)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(ProblemError(500, "internal", "internal error"), request.url.path)
