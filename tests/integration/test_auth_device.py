"""RFC 8628 device login: the HTTP surface, the approval page, and `plexctl login` end to end."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import httpx
from tests.conftest import VENV_BIN
from tests.integration.auth_helpers import browser, csrf_headers, make_user

USER_CODE = re.compile(r"^[A-Z2-7]{4}-[A-Z2-7]{4}$")


def _device_code(stack, **body):
    with stack.http(token="") as http:
        return http.post("/v1/auth/device-code", json={"domain_id": str(stack.domain_id), **body})


def _poll(stack, device_code: str) -> httpx.Response:
    with stack.http(token="") as http:
        return http.post("/v1/auth/device-token", json={"device_code": device_code})


def _approve(http: httpx.Client, user_code: str, path: str = "/v1/auth/device/approve") -> httpx.Response:
    return http.post(path, json={"user_code": user_code}, headers=csrf_headers(http))


def test_device_code_response_follows_rfc_8628(stack):
    resp = _device_code(stack, client_id="plexctl")
    assert resp.status_code == 200, resp.text
    grant = resp.json()
    assert set(grant) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                          "expires_in", "interval"}
    assert USER_CODE.match(grant["user_code"])
    assert grant["verification_uri"] == f"{stack.url}/device"
    assert grant["verification_uri_complete"] == f"{stack.url}/device?user_code={grant['user_code']}"
    assert (grant["expires_in"], grant["interval"]) == (600, 5)
    assert grant["device_code"] not in str(stack.sql("SELECT * FROM plexsphere.device_codes"))


def test_device_code_errors(stack):
    resp = _device_code(stack, domain_id="01900000-0000-7000-8000-000000000000")
    assert (resp.status_code, resp.json()["code"]) == (404, "domain_not_found")
    with stack.http(token="") as http:
        resp = http.post("/v1/auth/device-code", json={"client_id": "plexctl"})
    assert (resp.status_code, resp.json()["code"]) == (400, "invalid_body")
    resp = _device_code(stack, domain_id="acme-corp")
    assert resp.status_code == 400
    resp = _device_code(stack, idp_binding_id="01900000-0000-7000-8000-000000000000")
    assert (resp.status_code, resp.json()["code"]) == (404, "idp_binding_not_found")
    resp = _device_code(stack, idp_binding_id="01900000-0000-7000-8000-000000000000", idp_binding_alias="local")
    assert resp.status_code == 400
    assert _device_code(stack, idp_binding_alias="local").status_code == 200


def test_polling_before_approval_is_pending_then_slow_down(stack):
    grant = _device_code(stack).json()
    first = _poll(stack, grant["device_code"])
    assert (first.status_code, first.json()["code"]) == (400, "authorization_pending")
    second = _poll(stack, grant["device_code"])
    assert (second.status_code, second.json()["code"]) == (400, "slow_down")
    # slow_down adds 5 s to the interval the client must keep (RFC 8628 §3.5).
    assert stack.sql_value("SELECT interval_s FROM plexsphere.device_codes WHERE user_code = %s",
                           grant["user_code"].replace("-", "")) == 10
    unknown = _poll(stack, "pxd_unknown")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_grant")


def test_approval_issues_one_token_for_the_approving_user(stack):
    username, identity_id = make_user(stack)
    grant = _device_code(stack).json()
    with browser(stack, username) as http:
        resp = _approve(http, grant["user_code"])
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "approved"}
        again = _approve(http, grant["user_code"])
        assert (again.status_code, again.json()["code"]) == (409, "device-code-already-approved")
    token = _poll(stack, grant["device_code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["access_token"].startswith("pxa_")
    with stack.http(token=body["access_token"]) as http:
        me = http.get("/v1/auth/whoami").json()
    assert me["subject"] == str(identity_id)
    assert me["amr"] == ["pwd"]
    replay = _poll(stack, grant["device_code"])
    assert (replay.status_code, replay.json()["code"]) == (400, "invalid_grant")


def test_concurrent_polls_of_an_approved_code_redeem_it_once(stack):
    username, _ = make_user(stack)
    grant = _device_code(stack).json()
    with browser(stack, username) as http:
        assert _approve(http, grant["user_code"]).status_code == 200
    results: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def poll():
        barrier.wait()
        results.append(_poll(stack, grant["device_code"]))

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] + [400] * 7
    assert {r.json()["code"] for r in results if r.status_code == 400} == {"invalid_grant"}


def test_approve_needs_a_browser_session_and_csrf(stack):
    username, _ = make_user(stack)
    grant = _device_code(stack).json()
    with stack.http() as bearer:  # a bearer is not a browser session
        resp = bearer.post("/v1/auth/device/approve", json={"user_code": grant["user_code"]})
        assert (resp.status_code, resp.json()["code"]) == (401, "unauthenticated")
    with browser(stack, username) as http:
        resp = http.post("/v1/auth/device/approve", json={"user_code": grant["user_code"]},
                         headers={"Sec-Fetch-Site": "same-origin"})
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-token-mismatch")
        resp = http.post("/v1/auth/device/approve", json={"user_code": grant["user_code"]},
                         headers={"X-Plexsphere-CSRF": csrf_headers(http)["X-Plexsphere-CSRF"],
                                  "Origin": "https://evil.example"})
        assert (resp.status_code, resp.json()["code"]) == (403, "csrf-origin-mismatch")
    assert _poll(stack, grant["device_code"]).json()["code"] == "authorization_pending"


def test_approve_errors(stack):
    username, _ = make_user(stack)
    expired = _device_code(stack).json()
    stack.sql("UPDATE plexsphere.device_codes SET expires_at = now() - interval '1 second' WHERE user_code = %s",
              expired["user_code"].replace("-", ""))
    with browser(stack, username) as http:
        resp = _approve(http, "AAAA-AAAA")
        assert (resp.status_code, resp.json()["code"]) == (404, "device-code-not-found")
        resp = _approve(http, expired["user_code"])
        assert (resp.status_code, resp.json()["code"]) == (409, "device-code-expired")
        for bad in ("abcd-efgh", "ABCD1EFGH", "ABC", 12345678):
            resp = http.post("/v1/auth/device/approve", json={"user_code": bad}, headers=csrf_headers(http))
            assert (resp.status_code, resp.json()["code"]) == (400, "invalid_body"), bad
        # The dash is optional.
        fresh = _device_code(stack).json()
        assert _approve(http, fresh["user_code"].replace("-", "")).status_code == 200
    resp = _poll(stack, expired["device_code"])
    assert (resp.status_code, resp.json()["code"]) == (400, "expired_token")


def test_denied_code_answers_access_denied(stack):
    username, _ = make_user(stack)
    grant = _device_code(stack).json()
    with browser(stack, username) as http:
        resp = _approve(http, grant["user_code"], path="/v1/auth/local/device/deny")
        assert resp.status_code == 200 and resp.json() == {"status": "denied"}
        resp = _approve(http, grant["user_code"])
        assert (resp.status_code, resp.json()["code"]) == (409, "device-code-expired")
    resp = _poll(stack, grant["device_code"])
    assert (resp.status_code, resp.json()["code"]) == (400, "access_denied")


def test_verification_page_is_served_hardened(stack):
    with stack.http(token="") as http:
        resp = http.get("/device", params={"user_code": "ABCD-EFGH"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"
    nonce = re.search(r"'nonce-([^']+)'", resp.headers["content-security-policy"]).group(1)
    assert f'<script nonce="{nonce}">' in resp.text
    assert "/v1/auth/device/approve" in resp.text and "/v1/auth/local/sign-in" in resp.text


def test_local_provider_names_the_domain_to_log_into(stack):
    with stack.http(token="") as http:
        default = http.get("/v1/auth/local/provider")
        by_slug = http.get("/v1/auth/local/provider", params={"domain": "acme-corp"})
        by_id = http.get("/v1/auth/local/provider", params={"domain": str(stack.domain_id)})
        unknown = http.get("/v1/auth/local/provider", params={"domain": "no-such-domain"})
    for resp in (default, by_slug, by_id):
        assert resp.status_code == 200
        assert resp.json()["domain_id"] == str(stack.domain_id)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "domain_not_found")


def _login_env(stack, config_home: Path) -> dict[str, str]:
    env = {k: v for k, v in stack.env.items() if k not in ("PLEXSPHERE_TOKEN", "PLEXSPHERE_URL")}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return env


def test_plexctl_login_device_flow_end_to_end(stack, tmp_path):
    """`plexctl login` prints a code, a person approves it in a browser session, and the stored
    credentials then work for `plexctl whoami`; `plexctl logout` revokes them."""
    username, identity_id = make_user(stack)
    env = _login_env(stack, tmp_path / "config")
    login = subprocess.Popen([str(VENV_BIN / "plexctl"), "login", "--url", stack.url, "--domain", "acme-corp"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed: list[str] = []
        code = None
        while code is None:
            line = login.stderr.readline()
            assert line, f"plexctl login exited early: {''.join(printed)}"
            printed.append(line)
            match = re.match(r"^Code: ([A-Z2-7]{4}-[A-Z2-7]{4})$", line.strip())
            code = match.group(1) if match else None
        assert any(f"{stack.url}/device?user_code={code}" in line for line in printed)

        with browser(stack, username) as http:  # what the device page does
            assert _approve(http, code).status_code == 200
        stdout, stderr = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, stderr
    assert f"subject: {identity_id}" in stdout

    creds_path = tmp_path / "config" / "plexsphere" / "credentials.json"
    assert stat.S_IMODE(os.stat(creds_path).st_mode) == 0o600
    stored = json.loads(creds_path.read_text())
    assert stored["url"] == stack.url and stored["token"].startswith("pxa_")

    whoami = stack.plexctl("whoami", "-o", "json", env=env)
    assert json.loads(whoami.stdout)["subject"] == str(identity_id)
    assert stack.plexctl("auth", "token", env=env).stdout.strip() == stored["token"]

    logout = stack.plexctl("logout", env=env)
    assert "Logged out" in logout.stderr
    assert not creds_path.exists()
    with stack.http(token=stored["token"]) as http:
        assert http.get("/v1/auth/whoami").status_code == 401
    after = stack.plexctl("whoami", env=env, check=False)
    assert after.returncode != 0 and "not logged in" in after.stderr


def test_plexctl_login_stops_when_the_code_is_denied(stack, tmp_path):
    username, _ = make_user(stack)
    env = _login_env(stack, tmp_path / "config")
    login = subprocess.Popen([str(VENV_BIN / "plexctl"), "login", "--url", stack.url],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        code = None
        while code is None:
            line = login.stderr.readline()
            assert line, "plexctl login exited early"
            match = re.match(r"^Code: (\S+)$", line.strip())
            code = match.group(1) if match else None
        with browser(stack, username) as http:
            assert _approve(http, code, path="/v1/auth/local/device/deny").status_code == 200
        _, stderr = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 1
    assert "code: access_denied" in stderr
    assert not (tmp_path / "config" / "plexsphere" / "credentials.json").exists()


def test_plexctl_login_with_a_password_from_stdin(stack, tmp_path):
    username, identity_id = make_user(stack)
    env = _login_env(stack, tmp_path / "config")
    result = stack.plexctl("login", "--url", stack.url, "--username", username, "--password-stdin", "-o", "json",
                           env=env, input="correct horse battery staple\n")
    assert json.loads(result.stdout)["subject"] == str(identity_id)
    assert (tmp_path / "config" / "plexsphere" / "credentials.json").exists()
    assert json.loads(stack.plexctl("whoami", "-o", "json", env=env).stdout)["amr"] == ["pwd"]

    wrong = stack.plexctl("login", "--url", stack.url, "--username", username, "--password-stdin", env=env,
                          input="wrong\n", check=False)
    assert wrong.returncode == 1
    assert "code: invalid_credentials" in wrong.stderr
