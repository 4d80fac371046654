"""Typed HTTP client (httpx) used by plexctl, plexd and the tests."""

from plexsphere.client.base import ApiClient, ApiError

__all__ = ["ApiClient", "ApiError"]
