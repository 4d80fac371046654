"""API tokens (`/v1/auth/tokens`): plaintext once, digest only, revoke, rotate with Sunset."""

from __future__ import annotations

import json
import threading
from email.utils import parsedate_to_datetime

from tests.integration.auth_helpers import make_user, sign_in

from plexsphere.timeutil import parse_rfc3339, utcnow


def _issue(http, identity_ref: str, **extra):
    return http.post("/v1/auth/tokens", json={"identity_ref": identity_ref, "env_prefix": "dev", **extra})


def _signed_in(stack):
    username, identity_id = make_user(stack)
    return sign_in(stack, username).json()["access_token"], identity_id


def test_issued_plaintext_is_shown_once_and_works_as_a_bearer(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        resp = _issue(http, f"user:{identity_id}", ttl_seconds=3600)
        assert resp.status_code == 201, resp.text
        issued = resp.json()
        assert "sunset" not in resp.headers  # a first issuance retires nothing
        listed = http.get("/v1/auth/tokens")
    assert set(issued) == {"id", "plaintext", "env_prefix", "expires_at"}
    assert issued["plaintext"].startswith("psk_dev_")
    assert issued["env_prefix"] == "dev"
    lifetime = parse_rfc3339(issued["expires_at"]) - utcnow()
    assert 3500 < lifetime.total_seconds() <= 3600

    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()] == [issued["id"]]
    assert issued["plaintext"] not in listed.text
    assert set(listed.json()[0]) <= {"id", "env_prefix", "created_at", "expires_at", "last_used_at", "rotated_at"}
    assert issued["plaintext"] not in str(stack.sql("SELECT * FROM plexsphere.api_tokens"))

    with stack.http(token=issued["plaintext"]) as http:
        me = http.get("/v1/auth/whoami")
        assert me.status_code == 200
        assert me.json()["subject"] == str(identity_id)
        assert me.json()["amr"] == ["token"]
        last_used = http.get("/v1/auth/tokens").json()[0]["last_used_at"]
    assert last_used is not None


def test_revoked_token_is_401_at_once_and_revoking_twice_is_404(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        issued = _issue(http, f"user:{identity_id}").json()
        with stack.http(token=issued["plaintext"]) as bearer:
            assert bearer.get("/v1/auth/whoami").status_code == 200
            assert http.delete(f"/v1/auth/tokens/{issued['id']}").status_code == 204
            resp = bearer.get("/v1/auth/whoami")
        assert resp.status_code == 401
        assert resp.json()["code"] == "unauthenticated"
        again = http.delete(f"/v1/auth/tokens/{issued['id']}")
        assert again.status_code == 404
        assert again.json()["code"] == "api_token_not_found"
        assert http.get("/v1/auth/tokens").json() == []


def test_another_callers_token_is_404_for_revoke_and_rotate(stack):
    mine, my_id = _signed_in(stack)
    theirs, _ = _signed_in(stack)
    with stack.http(token=mine) as http:
        issued = _issue(http, f"user:{my_id}").json()
    with stack.http(token=theirs) as other:
        assert other.delete(f"/v1/auth/tokens/{issued['id']}").status_code == 404
        assert other.post(f"/v1/auth/tokens/{issued['id']}/rotate").status_code == 404
        assert other.get("/v1/auth/tokens").json() == []
    with stack.http(token=issued["plaintext"]) as bearer:
        assert bearer.get("/v1/auth/whoami").status_code == 200


def test_rotation_keeps_the_old_plaintext_until_the_sunset_deadline(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        issued = _issue(http, f"user:{identity_id}").json()
        resp = http.post(f"/v1/auth/tokens/{issued['id']}/rotate")
        assert resp.status_code == 200, resp.text
        rotated = resp.json()
        summary = http.get("/v1/auth/tokens").json()[0]
    assert rotated["id"] == issued["id"]
    assert rotated["plaintext"] != issued["plaintext"] and rotated["plaintext"].startswith("psk_dev_")
    assert rotated["expires_at"] == issued["expires_at"]  # rotation never extends a credential
    deadline = parse_rfc3339(rotated["rotation_deadline"])
    assert parsedate_to_datetime(resp.headers["sunset"]) == deadline
    assert 0 < (deadline - parse_rfc3339(summary["rotated_at"])).total_seconds() <= 15 * 60
    assert rotated["plaintext"] not in str(stack.sql("SELECT * FROM plexsphere.api_tokens"))

    with stack.http(token=issued["plaintext"]) as old, stack.http(token=rotated["plaintext"]) as new:
        assert old.get("/v1/auth/whoami").status_code == 200
        assert new.get("/v1/auth/whoami").status_code == 200
        stack.sql("UPDATE plexsphere.api_tokens SET previous_valid_until = now() - interval '1 second' "
                  "WHERE id = %s", issued["id"])
        assert old.get("/v1/auth/whoami").status_code == 401
        assert new.get("/v1/auth/whoami").status_code == 200


def test_revoking_a_rotated_token_kills_both_plaintexts(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        issued = _issue(http, f"user:{identity_id}").json()
        rotated = http.post(f"/v1/auth/tokens/{issued['id']}/rotate").json()
        assert http.delete(f"/v1/auth/tokens/{issued['id']}").status_code == 204
    for plaintext in (issued["plaintext"], rotated["plaintext"]):
        with stack.http(token=plaintext) as bearer:
            assert bearer.get("/v1/auth/whoami").status_code == 401


def test_expired_api_token_is_401_and_cannot_be_rotated(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        issued = _issue(http, f"user:{identity_id}").json()
        stack.sql("UPDATE plexsphere.api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
                  issued["id"])
        assert http.post(f"/v1/auth/tokens/{issued['id']}/rotate").status_code == 404
    with stack.http(token=issued["plaintext"]) as bearer:
        assert bearer.get("/v1/auth/whoami").status_code == 401


def test_concurrent_rotations_leave_exactly_one_current_plaintext(stack):
    token, identity_id = _signed_in(stack)
    with stack.http(token=token) as http:
        issued = _issue(http, f"user:{identity_id}").json()
    results: list = []

    def rotate():
        with stack.http(token=token) as http:
            results.append(http.post(f"/v1/auth/tokens/{issued['id']}/rotate"))

    threads = [threading.Thread(target=rotate) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 6
    plaintexts = [r.json()["plaintext"] for r in results]
    assert len(set(plaintexts)) == 6
    working = []
    for plaintext in plaintexts:
        with stack.http(token=plaintext) as bearer:
            working.append(bearer.get("/v1/auth/whoami").status_code == 200)
    # The newest is current, the one before it is in its grace period; the others are gone.
    assert sum(working) == 2


def test_identity_ref_must_be_the_caller_unless_platform_admin(stack):
    token, identity_id = _signed_in(stack)
    _, other_id = make_user(stack)
    with stack.http(token=token) as http:
        resp = _issue(http, f"user:{other_id}")
        assert resp.status_code == 403
        assert resp.json()["code"] == "permission_denied"
        assert "reason" in resp.json()
    with stack.http() as admin:  # the seeded admin holds platform admin
        resp = _issue(admin, f"user:{other_id}")
        assert resp.status_code == 201, resp.text
        minted = resp.json()["plaintext"]
        missing = _issue(admin, "user:01900000-0000-7000-8000-000000000000")
        assert (missing.status_code, missing.json()["code"]) == (404, "identity_not_found")
        wrong_kind = _issue(admin, f"service:{other_id}")
        assert wrong_kind.status_code == 404
    with stack.http(token=minted) as bearer:
        assert bearer.get("/v1/auth/whoami").json()["subject"] == str(other_id)


def test_invalid_issue_requests_are_400(stack):
    token, identity_id = _signed_in(stack)
    me = f"user:{identity_id}"
    with stack.http(token=token) as http:
        cases = [
            ({"identity_ref": me, "env_prefix": "qa"}, "invalid_body"),
            ({"identity_ref": me}, "invalid_body"),
            ({"env_prefix": "dev"}, "invalid_body"),
            ({"identity_ref": "user:not-a-uuid", "env_prefix": "dev"}, "invalid_body"),
            ({"identity_ref": f"group:{identity_id}", "env_prefix": "dev"}, "invalid_body"),
            ({"identity_ref": me, "env_prefix": "dev", "ttl_seconds": "3600"}, "invalid_body"),
            ({"identity_ref": me, "env_prefix": "dev", "ttl_seconds": 10}, "invalid_ttl"),
            ({"identity_ref": me, "env_prefix": "dev", "ttl_seconds": 10**12}, "invalid_ttl"),
        ]
        for body, code in cases:
            resp = http.post("/v1/auth/tokens", json=body)
            assert (resp.status_code, resp.json()["code"]) == (400, code), body
        bad_id = http.delete("/v1/auth/tokens/not-a-uuid")
        assert bad_id.status_code == 400
        assert http.get("/v1/auth/tokens").json() == []  # nothing was minted along the way


def test_token_routes_need_authentication(stack):
    with stack.http(token="") as http:
        assert http.get("/v1/auth/tokens").status_code == 401
        assert http.post("/v1/auth/tokens", json={"identity_ref": "user:x", "env_prefix": "dev"}).status_code == 401
        assert http.delete("/v1/auth/tokens/01900000-0000-7000-8000-000000000000").status_code == 401
        assert http.post("/v1/auth/tokens/01900000-0000-7000-8000-000000000000/rotate").status_code == 401


def test_plexctl_auth_tokens_lifecycle(stack):
    token, identity_id = _signed_in(stack)
    env = {**stack.env, "PLEXSPHERE_TOKEN": token}
    created = stack.plexctl("auth", "tokens", "create", "--ttl", "30d", env=env)
    lines = created.stdout.splitlines()
    assert lines[0] == "# WARNING: this is the only time this plaintext will be displayed"
    plaintext = lines[1]
    assert plaintext.startswith("psk_dev_")
    token_id = next(line.split(": ", 1)[1] for line in lines if line.startswith("id: "))

    listed = json.loads(stack.plexctl("auth", "tokens", "list", "-o", "json", env=env).stdout)
    assert [t["id"] for t in listed] == [token_id]
    table = stack.plexctl("auth", "tokens", "list", env=env).stdout
    assert table.splitlines()[0].split() == ["ID", "ENV_PREFIX", "CREATED_AT", "EXPIRES_AT", "LAST_USED_AT",
                                             "ROTATED_AT"]
    assert plaintext not in table

    rotated = json.loads(stack.plexctl("auth", "tokens", "rotate", token_id, "-o", "json", env=env).stdout)
    assert rotated["id"] == token_id and rotated["plaintext"] != plaintext

    whoami = stack.plexctl("whoami", "-o", "json", env={**env, "PLEXSPHERE_TOKEN": rotated["plaintext"]})
    assert json.loads(whoami.stdout)["subject"] == str(identity_id)

    assert stack.plexctl("auth", "tokens", "revoke", token_id, env=env).stdout.strip() == f"revoked {token_id}"
    again = stack.plexctl("auth", "tokens", "revoke", token_id, env=env, check=False)
    assert again.returncode == 1
    assert "code: api_token_not_found" in again.stderr
