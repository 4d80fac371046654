"""Operator call for a Domain's mesh topology."""

from __future__ import annotations

from typing import Any

from plexsphere.client.base import ApiClient


def get(api: ApiClient, domain_id: str, *, summary: bool = False) -> dict[str, Any]:
    return api.get(f"/v1/domains/{domain_id}/mesh/topology", params={"summary": "true" if summary else None})
