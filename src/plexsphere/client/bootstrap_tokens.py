"""Bootstrap token operations (IssueBootstrapToken, ListBootstrapTokens, GetBootstrapTokenMetadata,
RevokeBootstrapToken)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient


def _base(project_id: str) -> str:
    return f"/v1/projects/{project_id}/bootstrap-tokens"


def issue(c: ApiClient, project_id: str, kind: str, env_prefix: str, ttl_seconds: int) -> dict[str, Any]:
    return c.post(_base(project_id), json={"kind": kind, "env_prefix": env_prefix, "ttl_seconds": ttl_seconds})


def list_page(c: ApiClient, project_id: str, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    return c.get(_base(project_id), params={"cursor": cursor, "limit": limit})


def list_all(c: ApiClient, project_id: str) -> Iterator[dict[str, Any]]:
    return c.paginate(_base(project_id))


def get(c: ApiClient, project_id: str, token_id: str) -> dict[str, Any]:
    return c.get(f"{_base(project_id)}/{token_id}")


def revoke(c: ApiClient, project_id: str, token_id: str) -> None:
    c.delete(f"{_base(project_id)}/{token_id}")
