"""Request bodies under our control: size cap before decoding (413 with the route's code), gzip
(plexd compresses bodies over 1 KiB), strict JSON, then pydantic validation mapped to the route's
contract codes. Routes declare their body with `json_body(...)` so that order is the contract's:
auth (a dependency declared earlier) → 413 → 400 malformed → validation."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from plexsphere.domain.errors import ProblemError

M = TypeVar("M", bound=BaseModel)

TENANCY_BODY_LIMIT = 8 * 1024
NODE_BODY_LIMIT = 4 * 1024


async def read_body(request: Request, *, limit: int, too_large_code: str = "request_body_too_large",
                    malformed_code: str = "invalid_body") -> bytes:
    too_large = ProblemError(413, too_large_code, f"request body exceeds {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    data = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = decompressor.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ProblemError(400, malformed_code, "request body is not valid gzip") from exc
        if len(data) > limit or decompressor.unconsumed_tail:
            raise too_large
    return data


async def read_json(
    request: Request,
    *,
    limit: int = TENANCY_BODY_LIMIT,
    too_large_code: str = "request_body_too_large",
    malformed_code: str = "invalid_body",
) -> Any:
    data = await read_body(request, limit=limit, too_large_code=too_large_code, malformed_code=malformed_code)
    if not data.strip():
        raise ProblemError(400, malformed_code, "request body is empty")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(400, malformed_code, f"request body is not valid JSON: {exc}") from exc


def validation_detail(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def validate(
    model: type[M],
    obj: Any,
    *,
    code: str = "invalid_body",
    status: int = 400,
    unknown_field_code: str | None = None,
) -> M:
    if not isinstance(obj, dict):
        raise ProblemError(400, unknown_field_code or code, "request body must be a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        if unknown_field_code and any(e.get("type") == "extra_forbidden" for e in exc.errors()):
            raise ProblemError(400, unknown_field_code, validation_detail(exc)) from exc
        raise ProblemError(status, code, validation_detail(exc)) from exc


def json_body(
    model: type[M],
    *,
    limit: int = TENANCY_BODY_LIMIT,
    too_large_code: str = "request_body_too_large",
    malformed_code: str = "invalid_body",
    invalid_code: str | None = None,
    invalid_status: int = 400,
) -> Callable[[Request], Awaitable[M]]:
    """A dependency that yields the validated body model."""

    async def dependency(request: Request) -> M:
        obj = await read_json(request, limit=limit, too_large_code=too_large_code, malformed_code=malformed_code)
        return validate(
            model,
            obj,
            code=invalid_code or malformed_code,
            status=invalid_status,
            unknown_field_code=malformed_code,
        )

    dependency.__name__ = f"body_{model.__name__}"
    return dependency


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """openapi_extra describing a body read by json_body, so our own spec still shows it."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
