"""Resource operations (CreateResource, ListProjectResources, GetResource, DeleteResource)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient


def create(c: ApiClient, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return c.post(f"/v1/projects/{project_id}/resources", json=body)


def list_all(c: ApiClient, project_id: str) -> Iterator[dict[str, Any]]:
    return c.paginate(f"/v1/projects/{project_id}/resources")


def get(c: ApiClient, resource_id: str) -> dict[str, Any]:
    return c.get(f"/v1/resources/{resource_id}")


def delete(c: ApiClient, resource_id: str) -> None:
    c.delete(f"/v1/resources/{resource_id}")
