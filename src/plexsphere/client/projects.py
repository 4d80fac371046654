"""Project operations (CreateProject, ListProjects, GetProject, PatchProject, DeleteProject)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient


def create(c: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    return c.post("/v1/projects", json=body)


def list_page(c: ApiClient, domain_id: str | None = None, cursor: str | None = None, limit: int | None = None
              ) -> dict[str, Any]:
    return c.get("/v1/projects", params={"domain_id": domain_id, "cursor": cursor, "limit": limit})


def list_all(c: ApiClient, domain_id: str | None = None) -> Iterator[dict[str, Any]]:
    return c.paginate("/v1/projects", {"domain_id": domain_id})


def get(c: ApiClient, project_id: str) -> dict[str, Any]:
    return c.get(f"/v1/projects/{project_id}")


def patch(c: ApiClient, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return c.patch(f"/v1/projects/{project_id}", json=body)


def delete(c: ApiClient, project_id: str) -> None:
    c.delete(f"/v1/projects/{project_id}")
