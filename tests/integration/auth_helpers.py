"""Helpers shared by the auth integration tests: local users with known passwords, browser-like
sessions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from plexsphere.ids import uuid7
from plexsphere.services.bootstrap import password_hasher

PASSWORD = "correct horse battery staple"
_HASH = password_hasher.hash(PASSWORD)  # hashed once: argon2 is slow on purpose


def make_user(stack, *, email: str | None = None, domain_id: uuid.UUID | None = None) -> tuple[str, uuid.UUID]:
    """A local user (no grants) whose password is PASSWORD; returns (username, id)."""
    username = stack.unique("user")
    identity_id = uuid7()
    stack.sql(
        """INSERT INTO plexsphere.identities (id, domain_id, kind, username, display_name, email, external_subject,
                                              password_hash, created_at, updated_at)
           VALUES (%s, %s, 'user', %s, %s, %s, %s, %s, now(), now())""",
        identity_id, domain_id or stack.domain_id, username, username, email, f"local:{username}", _HASH,
    )
    return username, identity_id


def sign_in(stack, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    with stack.http(token="") as http:
        return http.post("/v1/auth/local/sign-in", json={"username": username, "password": password},
                         headers=headers)


@contextmanager
def browser(stack, username: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """An httpx client holding a signed-in browser session (cookies), as the device page would."""
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        resp = http.post("/v1/auth/local/sign-in", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        assert http.cookies.get("plexsphere_session", path="/v1/")
        yield http


def csrf_headers(http: httpx.Client) -> dict[str, str]:
    return {"X-Plexsphere-CSRF": http.cookies.get("plexsphere_csrf", path="/"), "Sec-Fetch-Site": "same-origin"}
