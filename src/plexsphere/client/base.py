"""The operator-side HTTP client: one method per contract operation lives in the noun modules
(client/<noun>.py) as functions taking an ApiClient; this module holds transport and errors."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """A non-2xx answer. `problem` is the parsed application/problem+json body (or a stand-in)."""

    def __init__(self, status: int, problem: dict[str, Any], headers: httpx.Headers | None = None) -> None:
        self.status = status
        self.problem = problem
        self.headers = headers or httpx.Headers()
        super().__init__(f"{status} {problem.get('code') or ''}: {problem.get('detail') or problem.get('title')}")

    @property
    def code(self) -> str | None:
        return self.problem.get("code")


def problem_from(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        if isinstance(body, dict):
            return body
    except ValueError:
        pass
    return {"title": response.reason_phrase, "status": response.status_code, "detail": response.text[:500]}


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"User-Agent": "plexctl/0.1", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        response = self.http.request(method, path, json=json, params=params, headers=headers)
        if response.status_code >= 400:
            raise ApiError(response.status_code, problem_from(response), response.headers)
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return _json(self.request("GET", path, **kw))

    def post(self, path: str, **kw: Any) -> Any:
        return _json(self.request("POST", path, **kw))

    def put(self, path: str, **kw: Any) -> Any:
        return _json(self.request("PUT", path, **kw))

    def patch(self, path: str, **kw: Any) -> Any:
        return _json(self.request("PATCH", path, **kw))

    def delete(self, path: str, **kw: Any) -> Any:
        return _json(self.request("DELETE", path, **kw))

    def paginate(self, path: str, params: dict[str, Any] | None = None, *, page_size: int = 200):
        """Yields every item of a cursor-paginated list."""
        params = dict(params or {})
        params.setdefault("limit", page_size)
        while True:
            page = self.get(path, params=params)
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = cursor


def _json(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    return response.json()
