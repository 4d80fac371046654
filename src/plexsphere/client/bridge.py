"""Bridge relay operations (GetBridgeRelay, ConfigureBridgeRelay, DeleteBridgeRelay)."""

from __future__ import annotations

from typing import Any

from plexsphere.client.base import ApiClient


def relay_path(project_id: str, resource_id: str) -> str:
    return f"/v1/projects/{project_id}/resources/{resource_id}/bridge/relay"


def get_relay(c: ApiClient, project_id: str, resource_id: str) -> dict[str, Any]:
    return c.get(relay_path(project_id, resource_id))


def set_relay(c: ApiClient, project_id: str, resource_id: str, *, enabled: bool, listen_port: int) -> dict[str, Any]:
    return c.put(relay_path(project_id, resource_id), json={"enabled": enabled, "listen_port": listen_port})


def delete_relay(c: ApiClient, project_id: str, resource_id: str) -> None:
    c.delete(relay_path(project_id, resource_id))
