"""Bootstrap token administration against a real server: issue, read, list, revoke, authz order."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from tests.integration.enrolment_helpers import (
    issue,
    keyring,
    make_project,
    make_user,
    register_body,
    token_row,
)

from plexsphere.crypto import base32_lower

TOKEN_RE = re.compile(r"^psb_[a-z]+_[a-z2-7]+_(node|bridge)_[a-z2-7]{20,}$")


def test_issue_returns_the_plaintext_once_in_the_spec_format(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = issue(http, project_id, kind="bridge", env="prod", ttl=300)
        meta = http.get(f"/v1/projects/{project_id}/bootstrap-tokens/{issued['token_id']}").json()

    token = issued["token"]
    assert TOKEN_RE.match(token)
    env, project_segment, kind, random = token.split("_")[1:]
    assert (env, kind) == ("prod", "bridge")
    assert project_segment == base32_lower(project_id.bytes)
    assert len(random) >= 26  # ≥ 128 random bits
    assert set(issued) == {"token_id", "token", "issued_at", "expires_at"}
    assert meta["id"] == issued["token_id"]
    assert meta["issued_at"] == issued["issued_at"] and meta["expires_at"] == issued["expires_at"]
    assert meta["kind"] == "bridge" and meta["env_prefix"] == "prod" and meta["project_id"] == str(project_id)
    assert meta["issued_by_user_id"] == str(stack.admin_id)
    assert "token" not in meta and "consumed_at" not in meta and "revoked_at" not in meta


def test_only_a_keyed_digest_of_the_plaintext_is_stored(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = issue(http, project_id)
    digest = bytes(stack.sql_value("SELECT digest FROM plexsphere.bootstrap_tokens WHERE id = %s",
                                   uuid.UUID(issued["token_id"])))
    assert digest == keyring(stack).digest("bootstrap-token", issued["token"])
    row = stack.sql("SELECT row_to_json(t)::text FROM plexsphere.bootstrap_tokens t WHERE id = %s",
                    uuid.UUID(issued["token_id"]))[0][0]
    assert issued["token"] not in row
    random_part = issued["token"].rsplit("_", 1)[1]
    assert random_part not in row


def test_two_tokens_never_share_a_plaintext(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        tokens = {issue(http, project_id)["token"] for _ in range(20)}
    assert len(tokens) == 20


@pytest.mark.parametrize("ttl", [299, 86401, 0, -5, "3600", 3600.5, None, True])
def test_ttl_outside_5m_to_24h_is_a_400_and_nothing_is_issued(stack, ttl):
    project_id = make_project(stack)
    with stack.http() as http:
        resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                         json={"kind": "node", "env_prefix": "dev", "ttl_seconds": ttl})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "invalid_ttl"
    assert stack.sql_value("SELECT count(*) FROM plexsphere.bootstrap_tokens WHERE project_id = %s", project_id) == 0


@pytest.mark.parametrize("ttl", [300, 86400])
def test_ttl_bounds_are_inclusive(stack, ttl):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = issue(http, project_id, ttl=ttl)
    seconds = stack.sql_value("SELECT extract(epoch FROM expires_at - issued_at) FROM plexsphere.bootstrap_tokens "
                              "WHERE id = %s", uuid.UUID(issued["token_id"]))
    assert float(seconds) == ttl


@pytest.mark.parametrize("body", [
    {"kind": "relay", "env_prefix": "dev", "ttl_seconds": 3600},
    {"kind": "node", "env_prefix": "Dev", "ttl_seconds": 3600},
    {"kind": "node", "env_prefix": "dev1", "ttl_seconds": 3600},
    {"kind": "node", "env_prefix": "", "ttl_seconds": 3600},
    {"kind": "node", "env_prefix": "a" * 33, "ttl_seconds": 3600},
    {"kind": "node", "ttl_seconds": 3600},
    {"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600, "issued_by_user_id": str(uuid.uuid4())},
    ["node"],
])
def test_malformed_issue_bodies_are_400_invalid_body(stack, body):
    project_id = make_project(stack)
    with stack.http() as http:
        resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens", json=body)
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_body"
    assert stack.sql_value("SELECT count(*) FROM plexsphere.bootstrap_tokens WHERE project_id = %s", project_id) == 0


def test_oversized_issue_body_is_413(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                         json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600, "pad": "x" * 9000})
    assert resp.status_code == 413


def test_unknown_project_is_403_for_callers_the_graph_does_not_reach(stack):
    # A Project that never existed has no place in the relation graph, so nobody holds a permission
    # on it: the answer cannot tell "missing" from "not yours".
    missing = uuid.uuid4()
    outsider = make_user(stack)
    for token in (None, outsider):
        with stack.http(token=token) as http:
            resp = http.post(f"/v1/projects/{missing}/bootstrap-tokens",
                             json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
            assert resp.status_code == 403
            assert resp.json()["reason"] in ("out_of_scope", "insufficient_relation")
            assert http.get(f"/v1/projects/{missing}/bootstrap-tokens").status_code == 403


def test_project_gone_behind_its_grants_is_404_project_not_found(stack):
    project_id = make_project(stack)
    stack.sql("DELETE FROM plexsphere.projects WHERE id = %s", project_id)  # its tuples linger (mirror lag)
    with stack.http() as http:
        resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                         json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
        assert resp.status_code == 404 and resp.json()["code"] == "project_not_found"
        assert http.get(f"/v1/projects/{project_id}/bootstrap-tokens").json()["code"] == "project_not_found"
        assert http.get(f"/v1/projects/{project_id}/bootstrap-tokens/{uuid.uuid4()}").json()["code"] == \
            "project_not_found"
        assert http.delete(f"/v1/projects/{project_id}/bootstrap-tokens/{uuid.uuid4()}").json()["code"] == \
            "project_not_found"
    assert stack.sql_value("SELECT count(*) FROM plexsphere.bootstrap_tokens WHERE project_id = %s", project_id) == 0


def test_authorization_is_checked_before_existence(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        token_id = issue(http, project_id)["token_id"]
    outsider = make_user(stack)
    viewer = make_user(stack, grants=(("project", str(project_id), "viewer"),))
    base = f"/v1/projects/{project_id}/bootstrap-tokens"
    with stack.http(token=outsider) as http:
        # The existing token and a made-up one answer alike: no id oracle.
        for tid in (token_id, uuid.uuid4()):
            assert http.get(f"{base}/{tid}").status_code == 403
            assert http.delete(f"{base}/{tid}").status_code == 403
        assert http.get(base).status_code == 403
        assert http.post(base, json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600}).status_code == 403
    with stack.http(token=viewer) as http:
        assert http.get(base).status_code == 200
        assert http.get(f"{base}/{token_id}").status_code == 200
        assert http.get(f"{base}/{uuid.uuid4()}").json()["code"] == "bootstrap_token_not_found"
        denied = http.post(base, json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
        assert denied.status_code == 403 and "relation_path" in denied.json()
        assert http.delete(f"{base}/{token_id}").status_code == 403
    assert token_row(stack, uuid.UUID(token_id))["revoked_at"] is None


def test_unauthenticated_calls_are_401(stack):
    project_id = make_project(stack)
    with stack.http(token="") as http:
        assert http.get(f"/v1/projects/{project_id}/bootstrap-tokens").status_code == 401
        resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                         json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600})
        assert resp.status_code == 401


def test_token_from_another_project_is_404_under_this_one(stack):
    project_a, project_b = make_project(stack), make_project(stack)
    with stack.http() as http:
        token_id = issue(http, project_a)["token_id"]
        assert http.get(f"/v1/projects/{project_b}/bootstrap-tokens/{token_id}").status_code == 404
        assert http.delete(f"/v1/projects/{project_b}/bootstrap-tokens/{token_id}").status_code == 404
    assert token_row(stack, uuid.UUID(token_id))["revoked_at"] is None


def test_list_pages_through_every_token_in_issue_order(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = [issue(http, project_id)["token_id"] for _ in range(7)]
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = http.get(f"/v1/projects/{project_id}/bootstrap-tokens", params=params).json()
            seen += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert seen == issued and pages == 3
        assert http.get(f"/v1/projects/{project_id}/bootstrap-tokens", params={"limit": 0}).json()["code"] == \
            "invalid_limit"
        assert http.get(f"/v1/projects/{project_id}/bootstrap-tokens",
                        params={"cursor": "garbage"}).json()["code"] == "invalid_cursor"
        first = http.get(f"/v1/projects/{project_id}/bootstrap-tokens", params={"limit": 3}).json()
    viewer = make_user(stack, grants=(("project", str(project_id), "viewer"),))
    with stack.http(token=viewer) as http:
        resp = http.get(f"/v1/projects/{project_id}/bootstrap-tokens", params={"cursor": first["next_cursor"]})
    assert resp.status_code == 403 and resp.json()["code"] == "cursor_binding_mismatch"


def test_revoke_closes_the_window_and_a_second_revoke_is_409_token_revoked(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = issue(http, project_id)
        url = f"/v1/projects/{project_id}/bootstrap-tokens/{issued['token_id']}"
        assert http.delete(url).status_code == 204
        again = http.delete(url)
        assert again.status_code == 409 and again.json()["code"] == "token_revoked"
        assert "revoked_at" in http.get(url).json()
        redeem = http.post("/v1/register", json=register_body(project_id, issued["token"]))
    assert redeem.status_code == 403 and redeem.json()["code"] == "token_revoked"


def test_revoking_a_redeemed_token_is_409_token_consumed(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        issued = issue(http, project_id)
        assert http.post("/v1/register", json=register_body(project_id, issued["token"])).status_code == 200
        resp = http.delete(f"/v1/projects/{project_id}/bootstrap-tokens/{issued['token_id']}")
    assert resp.status_code == 409 and resp.json()["code"] == "token_consumed"
    assert token_row(stack, uuid.UUID(issued["token_id"]))["revoked_at"] is None


def _race_revoke_against_redeem(stack, project_id) -> tuple[dict[str, int], dict]:
    with stack.http() as http:
        issued = issue(http, project_id)
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def redeem():
        with stack.http(token="") as http:
            barrier.wait()
            results["register"] = http.post("/v1/register", json=register_body(project_id, issued["token"])).status_code

    def revoke():
        with stack.http() as http:
            barrier.wait()
            results["revoke"] = http.delete(
                f"/v1/projects/{project_id}/bootstrap-tokens/{issued['token_id']}").status_code

    threads = [threading.Thread(target=redeem), threading.Thread(target=revoke)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, token_row(stack, uuid.UUID(issued["token_id"]))


def test_revoke_racing_redeem_has_exactly_one_winner(stack):
    project_id = make_project(stack)
    for _ in range(5):
        results, row = _race_revoke_against_redeem(stack, project_id)
        assert sorted(results.values()) in ([200, 409], [204, 403]), results
        if results["register"] == 200:
            assert row["consumed_at"] is not None and row["revoked_at"] is None
        else:
            assert row["revoked_at"] is not None and row["consumed_at"] is None


def test_plexctl_issue_prints_the_tutorial_lines(stack):
    project_id = make_project(stack)
    out = stack.plexctl("bootstrap-token", "issue", "--project", str(project_id), "--kind", "node",
                        "--env-prefix", "dev", "--ttl", "1h").stdout.splitlines()
    assert len(out) == 5
    assert out[0] == "# WARNING: this is the only time this plaintext will be displayed"
    assert TOKEN_RE.match(out[1]) and out[1].startswith("psb_dev_") and "_node_" in out[1]
    assert re.match(r"^token_id: [0-9a-f-]{36}$", out[2])
    assert re.match(r"^issued_at: \d{4}-\d\d-\d\dT", out[3])
    assert re.match(r"^expires_at: \d{4}-\d\d-\d\dT", out[4])
    token_id = out[2].split(": ")[1]
    hours = stack.sql_value("SELECT extract(epoch FROM expires_at - issued_at) FROM plexsphere.bootstrap_tokens "
                            "WHERE id = %s", uuid.UUID(token_id))
    assert float(hours) == 3600


def test_plexctl_json_output_is_the_api_object(stack):
    import json

    project_id = make_project(stack)
    result = stack.plexctl("bootstrap-token", "issue", "--project", str(project_id), "--kind", "node",
                           "--env-prefix", "dev", "--ttl", "30m", "--output", "json")
    issued = json.loads(result.stdout)
    assert set(issued) == {"token_id", "token", "issued_at", "expires_at"}
    assert TOKEN_RE.match(issued["token"])
    listed = json.loads(stack.plexctl("bootstrap-token", "list", "--project", str(project_id), "-o", "json").stdout)
    assert [i["id"] for i in listed["items"]] == [issued["token_id"]]
    shown = json.loads(stack.plexctl("bootstrap-token", "show", "--project", str(project_id), issued["token_id"],
                                     "-o", "json").stdout)
    assert shown["id"] == issued["token_id"] and "token" not in shown
    table = stack.plexctl("bootstrap-token", "list", "--project", str(project_id)).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "KIND", "ENV"] and table[1].startswith(issued["token_id"])


@pytest.mark.parametrize("ttl, seconds", [("90s", None), ("30m", 1800), ("24h", 86400), ("1h30m", 5400)])
def test_plexctl_ttl_takes_go_durations(stack, ttl, seconds):
    project_id = make_project(stack)
    result = stack.plexctl("bootstrap-token", "issue", "--project", str(project_id), "--ttl", ttl, "-o", "json",
                           check=False)
    if seconds is None:  # 90s is a valid duration but below the server's 5-minute floor
        assert result.returncode == 1 and "invalid_ttl" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    import json

    token_id = json.loads(result.stdout)["token_id"]
    stored = stack.sql_value("SELECT extract(epoch FROM expires_at - issued_at) FROM plexsphere.bootstrap_tokens "
                             "WHERE id = %s", uuid.UUID(token_id))
    assert float(stored) == seconds


def test_plexctl_rejects_a_malformed_ttl_locally(stack):
    project_id = make_project(stack)
    result = stack.plexctl("bootstrap-token", "issue", "--project", str(project_id), "--ttl", "an hour", check=False)
    assert result.returncode != 0 and "--ttl" in result.stderr
    assert stack.sql_value("SELECT count(*) FROM plexsphere.bootstrap_tokens WHERE project_id = %s", project_id) == 0


def test_plexctl_revoke_twice_reports_the_conflict(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        token_id = issue(http, project_id)["token_id"]
    first = stack.plexctl("bootstrap-token", "revoke", "--project", str(project_id), token_id)
    assert token_id in first.stdout
    second = stack.plexctl("bootstrap-token", "revoke", "--project", str(project_id), token_id, check=False)
    assert second.returncode == 1 and "token_revoked" in second.stderr
