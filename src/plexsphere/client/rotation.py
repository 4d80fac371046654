"""Mesh-key rotation calls: the operator's preview / trigger / history, and the Node's completion
(which authenticates with the Node's NSK bearer, so the ApiClient must carry that token)."""

from __future__ import annotations

import uuid
from typing import Any

from plexsphere.client.base import ApiClient


def preview(api: ApiClient, node_id: uuid.UUID | str) -> dict[str, Any]:
    return api.get(f"/v1/nodes/{node_id}/keys/rotate/preview")


def trigger(api: ApiClient, node_id: uuid.UUID | str) -> dict[str, Any]:
    return api.post(f"/v1/nodes/{node_id}/keys/rotate")


def history(api: ApiClient, node_id: uuid.UUID | str, *, limit: int | None = None,
            cursor: str | None = None) -> dict[str, Any]:
    return api.get(f"/v1/nodes/{node_id}/keys/rotations", params={"limit": limit, "cursor": cursor})


def all_history(api: ApiClient, node_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return list(api.paginate(f"/v1/nodes/{node_id}/keys/rotations"))


def complete(api: ApiClient, new_public_key: str) -> dict[str, Any]:
    return api.post("/v1/keys/rotate", json={"new_public_key": new_public_key})
