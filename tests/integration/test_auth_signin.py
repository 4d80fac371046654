"""Local password sign-in, bearer access tokens, sessions and sign-out against a real server."""

from __future__ import annotations

import httpx
from tests.integration.auth_helpers import PASSWORD, browser, csrf_headers, make_user, sign_in


def _set_cookies(resp: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in resp.headers.get_list("set-cookie")}


def test_sign_in_returns_a_bearer_access_token_and_a_browser_session(stack):
    username, identity_id = make_user(stack, email="ada@example.com")
    resp = sign_in(stack, username)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("pxa_")
    assert body["expires_in"] == 12 * 3600
    assert resp.headers["cache-control"] == "no-store"

    cookies = _set_cookies(resp)
    session = cookies["plexsphere_session"].lower()
    assert "path=/v1/" in session and "httponly" in session and "samesite=strict" in session
    assert "secure" not in session  # plain http here; browsers would drop a Secure cookie
    assert "httponly" not in cookies["plexsphere_csrf"].lower()  # the page's script must read it

    with stack.http(token=body["access_token"]) as http:
        me = http.get("/v1/auth/whoami")
    assert me.status_code == 200
    assert me.json() == {"principal_type": "user", "subject": str(identity_id), "domain_id": str(stack.domain_id),
                         "email": "ada@example.com", "amr": ["pwd"]}
    assert stack.sql_value("SELECT last_sign_in_at IS NOT NULL FROM plexsphere.identities WHERE id = %s",
                           identity_id)


def test_only_digests_of_sign_in_secrets_are_stored(stack):
    username, identity_id = make_user(stack)
    resp = sign_in(stack, username)
    secrets = [resp.json()["access_token"], resp.cookies["plexsphere_session"], resp.cookies["plexsphere_csrf"]]
    dump = str(stack.sql("SELECT * FROM plexsphere.access_tokens WHERE identity_id = %s", identity_id))
    assert stack.sql_value("SELECT count(*) FROM plexsphere.access_tokens WHERE identity_id = %s", identity_id) == 2
    for secret in secrets:
        assert secret not in dump


def test_session_cookie_authenticates_reads(stack):
    username, identity_id = make_user(stack)
    with browser(stack, username) as http:
        me = http.get("/v1/auth/whoami")
    assert me.status_code == 200
    assert me.json()["subject"] == str(identity_id)


def test_wrong_password_and_unknown_user_get_the_same_401(stack):
    username, _ = make_user(stack)
    wrong = sign_in(stack, username, "not the password")
    unknown = sign_in(stack, stack.unique("nobody"), PASSWORD)
    for resp in (wrong, unknown):
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "set-cookie" not in resp.headers
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"


def test_a_user_without_a_password_cannot_sign_in(stack):
    username, identity_id = make_user(stack)
    stack.sql("UPDATE plexsphere.identities SET password_hash = NULL WHERE id = %s", identity_id)
    assert sign_in(stack, username).status_code == 401


def test_expired_access_token_is_401(stack):
    username, identity_id = make_user(stack)
    token = sign_in(stack, username).json()["access_token"]
    with stack.http(token=token) as http:
        assert http.get("/v1/auth/whoami").status_code == 200
        stack.sql("UPDATE plexsphere.access_tokens SET expires_at = now() - interval '1 second' "
                  "WHERE identity_id = %s", identity_id)
        resp = http.get("/v1/auth/whoami")
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthenticated"
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_garbage_and_missing_credentials_are_401(stack):
    for token in ("", "pxa_not-a-token", "psk_dev_not-a-token", "something-else"):
        with stack.http(token=token) as http:
            resp = http.get("/v1/auth/whoami")
        assert resp.status_code == 401, token
        assert resp.json()["code"] == "unauthenticated"


def test_sign_out_revokes_the_presented_bearer_and_is_always_204(stack):
    username, _ = make_user(stack)
    token = sign_in(stack, username).json()["access_token"]
    with stack.http(token=token) as http:
        resp = http.delete("/v1/auth/whoami")
        assert resp.status_code == 204
        assert http.get("/v1/auth/whoami").status_code == 401
        assert http.delete("/v1/auth/whoami").status_code == 204  # already revoked: still 204
    with stack.http(token="") as http:
        assert http.delete("/v1/auth/whoami").status_code == 204  # nothing presented: still 204


def test_sign_out_with_a_cookie_revokes_the_session_and_clears_cookies(stack):
    username, _ = make_user(stack)
    with browser(stack, username) as http:
        session = http.cookies.get("plexsphere_session", path="/v1/")
        resp = http.delete("/v1/auth/whoami")
        assert resp.status_code == 204
        cleared = _set_cookies(resp)
        assert 'plexsphere_session=""' in cleared["plexsphere_session"] or "Max-Age=0" in cleared["plexsphere_session"]
        assert "Max-Age=0" in cleared["plexsphere_csrf"]
    with httpx.Client(base_url=stack.url, cookies={"plexsphere_session": session}) as replay:
        assert replay.get("/v1/auth/whoami").status_code == 401


def test_sign_out_leaves_api_tokens_alone(stack):
    with stack.http() as http:
        assert http.delete("/v1/auth/whoami").status_code == 204
        assert http.get("/v1/auth/whoami").status_code == 200


def test_cookie_writes_need_the_sessions_csrf_token_and_a_trusted_origin(stack):
    username, _ = make_user(stack)
    body = {"identity_ref": "user:00000000-0000-7000-8000-000000000001", "env_prefix": "dev"}
    with browser(stack, username) as http, browser(stack, username) as other:
        resp = http.post("/v1/auth/tokens", json=body)
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-origin-mismatch")
        resp = http.post("/v1/auth/tokens", json=body, headers={"Sec-Fetch-Site": "same-origin"})
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-token-mismatch")
        resp = http.post("/v1/auth/tokens", json=body,
                         headers={"X-Plexsphere-CSRF": "forged", "Origin": "https://evil.example"})
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-origin-mismatch")
        # Another session's token, sent with matching cookie: double-submit alone would pass.
        other_csrf = other.cookies.get("plexsphere_csrf", path="/")
        http.cookies.set("plexsphere_csrf", other_csrf, path="/")
        resp = http.post("/v1/auth/tokens", json=body,
                         headers={"X-Plexsphere-CSRF": other_csrf, "Sec-Fetch-Site": "same-origin"})
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-token-mismatch")
        # The session's own token from the allowed origin passes CSRF (then fails authz: not an admin).
        resp = other.post("/v1/auth/tokens", json=body, headers={**csrf_headers(other), "Origin": stack.url})
        assert resp.status_code == 403 and resp.json()["code"] == "permission_denied"


def test_repeated_failures_are_throttled_per_user_and_source(stack):
    username, _ = make_user(stack)
    attacker = {"X-Forwarded-For": "192.0.2.10"}
    for _ in range(10):
        assert sign_in(stack, username, "guess", **attacker).status_code == 401
    blocked = sign_in(stack, username, PASSWORD, **attacker)
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
    # The real user, elsewhere, is not locked out by someone else's guessing.
    assert sign_in(stack, username, PASSWORD, **{"X-Forwarded-For": "192.0.2.20"}).status_code == 200


def test_a_successful_sign_in_resets_the_failure_count(stack):
    username, _ = make_user(stack)
    source = {"X-Forwarded-For": "192.0.2.30"}
    for _ in range(9):
        assert sign_in(stack, username, "typo", **source).status_code == 401
    assert sign_in(stack, username, PASSWORD, **source).status_code == 200
    for _ in range(9):
        assert sign_in(stack, username, "typo", **source).status_code == 401
    assert sign_in(stack, username, PASSWORD, **source).status_code == 200
