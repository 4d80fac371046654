"""Operator calls for Nodes: list, get, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient
from plexsphere.ids import parse_uuid


def list_page(api: ApiClient, *, domain_id: str | None = None, project_id: str | None = None,
              cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    return api.get("/v1/nodes", params={"domain_id": domain_id, "project_id": project_id, "cursor": cursor,
                                        "limit": limit})


def list_all(api: ApiClient, *, domain_id: str | None = None, project_id: str | None = None) -> Iterator[dict]:
    return api.paginate("/v1/nodes", {"domain_id": domain_id, "project_id": project_id})


def get(api: ApiClient, node_id: str) -> dict[str, Any]:
    return api.get(f"/v1/nodes/{node_id}")


def delete(api: ApiClient, node_id: str) -> None:
    api.delete(f"/v1/nodes/{node_id}")


def resolve_domain_id(api: ApiClient, value: str) -> str:
    """A Domain id from an id or a slug (slugs are looked up in the caller's Domain list)."""
    if parse_uuid(value) is not None:
        return value
    for domain in api.paginate("/v1/domains"):
        if domain.get("slug") == value:
            return domain["id"]
    raise LookupError(f"no Domain with slug {value!r} is visible to you")
