"""Client calls of the auth surface. Each takes an ApiClient and returns the API's JSON object."""

from __future__ import annotations

from typing import Any

from plexsphere.client.base import ApiClient


def local_sign_in(client: ApiClient, username: str, password: str) -> dict[str, Any]:
    return client.post("/v1/auth/local/sign-in", json={"username": username, "password": password})


def local_provider(client: ApiClient, domain: str | None = None) -> dict[str, Any]:
    return client.get("/v1/auth/local/provider", params={"domain": domain})


def whoami(client: ApiClient) -> dict[str, Any]:
    return client.get("/v1/auth/whoami")


def sign_out(client: ApiClient) -> None:
    client.delete("/v1/auth/whoami")


def device_code(client: ApiClient, domain_id: str, client_id: str | None = "plexctl") -> dict[str, Any]:
    return client.post("/v1/auth/device-code", json={"domain_id": domain_id, "client_id": client_id})


def device_token(client: ApiClient, device_code: str, client_id: str | None = "plexctl") -> dict[str, Any]:
    """The token once approved; raises ApiError (400, code authorization_pending | slow_down |
    expired_token | access_denied | invalid_grant) until then."""
    return client.post("/v1/auth/device-token", json={"device_code": device_code, "client_id": client_id})


def list_tokens(client: ApiClient) -> list[dict[str, Any]]:
    return client.get("/v1/auth/tokens")


def issue_token(client: ApiClient, identity_ref: str, env_prefix: str = "dev",
                ttl_seconds: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"identity_ref": identity_ref, "env_prefix": env_prefix}
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    return client.post("/v1/auth/tokens", json=body)


def revoke_token(client: ApiClient, token_id: str) -> None:
    client.delete(f"/v1/auth/tokens/{token_id}")


def rotate_token(client: ApiClient, token_id: str) -> tuple[dict[str, Any], str | None]:
    """(the rotated token, the Sunset header: when the old plaintext stops working)."""
    response = client.request("POST", f"/v1/auth/tokens/{token_id}/rotate")
    return response.json(), response.headers.get("Sunset")
