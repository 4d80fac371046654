"""Domain operations (CreateDomain, ListDomains, GetDomain, PatchDomain, DeleteDomain) and the
identity reads under a Domain (ListIdentities, GetIdentity)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient


def create(c: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    return c.post("/v1/domains", json=body)


def list_page(c: ApiClient, cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    return c.get("/v1/domains", params={"cursor": cursor, "limit": limit})


def list_all(c: ApiClient) -> Iterator[dict[str, Any]]:
    return c.paginate("/v1/domains")


def get(c: ApiClient, domain_id: str) -> dict[str, Any]:
    return c.get(f"/v1/domains/{domain_id}")


def find(c: ApiClient, slug_or_id: str) -> dict[str, Any] | None:
    """By id (GetDomain), or by slug among the Domains the caller can see (the API addresses
    Domains by id only)."""
    try:
        uuid.UUID(slug_or_id)
    except ValueError:
        return next((d for d in list_all(c) if d["slug"] == slug_or_id), None)
    return get(c, slug_or_id)


def patch(c: ApiClient, domain_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return c.patch(f"/v1/domains/{domain_id}", json=body)


def delete(c: ApiClient, domain_id: str) -> None:
    c.delete(f"/v1/domains/{domain_id}")


def list_identities(c: ApiClient, domain_id: str, kind: str | None = None) -> Iterator[dict[str, Any]]:
    return c.paginate(f"/v1/domains/{domain_id}/identities", {"kind": kind})


def get_identity(c: ApiClient, domain_id: str, principal_id: str) -> dict[str, Any]:
    return c.get(f"/v1/domains/{domain_id}/identities/{principal_id}")
