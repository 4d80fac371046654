"""`POST /v1/register` for synchronous callers (tests, scripts). plexd has its own async client
(client/node.py). No Authorization header: the bootstrap token in the body is the credential."""

from __future__ import annotations

from typing import Any

import httpx

from plexsphere.client.base import ApiError, problem_from


def register(base_url: str, body: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    response = httpx.post(base_url.rstrip("/") + "/v1/register", json=body, timeout=timeout)
    if response.status_code >= 400:
        raise ApiError(response.status_code, problem_from(response), response.headers)
    return response.json()
