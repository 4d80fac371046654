"""The Node's own routes — heartbeat, endpoint, state, reachability — and every error code of the
digest for them, against the real server."""

from __future__ import annotations

import base64
import secrets

import pytest
from tests.conftest import wait_until
from tests.integration.mesh_helpers import (
    endpoint_body,
    enrol,
    heartbeat_body,
    make_domain,
    make_project,
    node_http,
)

from plexsphere import crypto
from plexsphere.timeutil import parse_rfc3339


@pytest.fixture(scope="module")
def mesh(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    return {"domain_id": domain_id, "project_id": project_id,
            "a": enrol(stack, project_id), "b": enrol(stack, project_id)}


def _code(resp) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return resp.json()["code"]


# -- heartbeat ------------------------------------------------------------------------------------
def test_heartbeat_accepts_both_checksum_forms_and_marks_healthy(stack, mesh):
    a = mesh["a"]
    with node_http(stack, a) as http:
        hex_form = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json=heartbeat_body())
        b64_form = http.post(f"/v1/nodes/{a.node_id}/heartbeat",
                             json=heartbeat_body(binary_checksum=base64.b64encode(secrets.token_bytes(32)).decode()))
        reach = http.get(f"/v1/nodes/{a.node_id}/reachability").json()
    assert hex_form.status_code == 200 and b64_form.status_code == 200, (hex_form.text, b64_form.text)
    body = b64_form.json()
    assert set(body) == {"accepted_at", "reconcile", "rotate_keys"}
    assert body == {"accepted_at": body["accepted_at"], "reconcile": False, "rotate_keys": False}
    assert parse_rfc3339(body["accepted_at"]) is not None
    assert reach["state"] == "healthy" and reach["last_heartbeat_at"] == body["accepted_at"]


@pytest.mark.parametrize(("overrides", "code"), [
    ({"client_now": "2001-01-01T00:00:00Z"}, "clock_skew"),
    ({"binary_checksum": ""}, "binary_checksum_empty"),
    ({"binary_checksum": "ab" * 31}, "binary_checksum_empty"),
    ({"binary_checksum": "AB" * 32}, "binary_checksum_empty"),
    ({"binary_checksum": base64.b64encode(b"x" * 31).decode()}, "binary_checksum_empty"),
    ({"binary_version": "   "}, "binary_version_empty"),
    ({"binary_version": ""}, "binary_version_empty"),
    ({"surprise": 1}, "malformed_heartbeat_request"),
    ({"client_now": "yesterday"}, "malformed_heartbeat_request"),
    ({"nat_summary": "none"}, "malformed_heartbeat_request"),
])
def test_heartbeat_rejects_bad_bodies_with_their_codes(stack, mesh, overrides, code):
    a = mesh["a"]
    with node_http(stack, a) as http:
        resp = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json=heartbeat_body(**overrides))
    assert resp.status_code == 400 and _code(resp) == code, resp.text


def test_heartbeat_missing_fields_and_bad_json(stack, mesh):
    a = mesh["a"]
    with node_http(stack, a) as http:
        url = f"/v1/nodes/{a.node_id}/heartbeat"
        body = heartbeat_body()
        del body["binary_checksum"]
        assert _code(http.post(url, json=body)) == "binary_checksum_empty"
        body = heartbeat_body()
        del body["binary_version"]
        assert _code(http.post(url, json=body)) == "binary_version_empty"
        assert _code(http.post(url, content=b"{not json", headers={"content-type": "application/json"})) == \
            "malformed_heartbeat_request"
        assert _code(http.post(url, json=[1, 2])) == "malformed_heartbeat_request"


def test_heartbeat_auth_401_and_cross_node_403(stack, mesh):
    a, b = mesh["a"], mesh["b"]
    url = f"/v1/nodes/{a.node_id}/heartbeat"
    with stack.http(token="") as anon:
        missing = anon.post(url, json=heartbeat_body())
    wrong = crypto.format_nsk_bearer("dev", __import__("uuid").UUID(a.node_id), secrets.token_bytes(32))
    with stack.http(token=wrong) as http:
        forged = http.post(url, json=heartbeat_body())
    with stack.http(token=stack.admin_token) as http:
        operator = http.post(url, json=heartbeat_body())
    with node_http(stack, b) as http:
        other = http.post(url, json=heartbeat_body())
    for resp in (missing, forged, operator):
        assert resp.status_code == 401 and _code(resp) == "nsk_revoked"
        assert resp.json()["title"] == "Unauthorized"
    assert other.status_code == 403
    assert other.json()["code"] == "node_id_mismatch" and other.json()["reason"] == "insufficient_relation"


def test_bare_base64_nsk_is_accepted(stack, mesh):
    a = mesh["a"]
    with stack.http(token=a.nsk) as http:
        resp = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json=heartbeat_body())
    assert resp.status_code == 200, resp.text


def test_heartbeat_reports_pending_rotation_and_reconcile_after_degradation(stack, mesh):
    a = mesh["a"]
    stack.sql("UPDATE plexsphere.peers SET reachability = 'stale' WHERE node_id = %s", a.node_id)
    peer_id = stack.sql_value("SELECT id FROM plexsphere.peers WHERE node_id = %s", a.node_id)
    stack.sql("""INSERT INTO plexsphere.key_rotations (id, node_id, peer_id, status, requested_by, requested_at)
                 VALUES (gen_random_uuid(), %s, %s, 'pending', 'user:test', now())""", a.node_id, peer_id)
    try:
        with node_http(stack, a) as http:
            first = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json=heartbeat_body()).json()
            second = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json=heartbeat_body()).json()
    finally:
        stack.sql("DELETE FROM plexsphere.key_rotations WHERE node_id = %s", a.node_id)
    assert first["reconcile"] is True and first["rotate_keys"] is True
    assert second["reconcile"] is False and second["rotate_keys"] is True
    assert stack.sql_value("SELECT reachability FROM plexsphere.peers WHERE node_id = %s", a.node_id) == "healthy"


# -- endpoint -------------------------------------------------------------------------------------
def test_endpoint_report_sets_stale_after_from_the_domain_ttl(stack, mesh):
    a = mesh["a"]
    with node_http(stack, a) as http:
        resp = http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.20:51820"))
        v6 = http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("[2001:db8::1]:51820", "symmetric"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"accepted_at", "stale_after"}
    ttl = stack.sql_value("SELECT endpoint_ttl_s FROM plexsphere.domains WHERE id = %s", mesh["domain_id"])
    assert (parse_rfc3339(body["stale_after"]) - parse_rfc3339(body["accepted_at"])).total_seconds() == ttl
    assert v6.status_code == 200
    assert stack.sql("SELECT endpoint, nat_type FROM plexsphere.peers WHERE node_id = %s", a.node_id) == [
        ("[2001:db8::1]:51820", "symmetric")]


@pytest.mark.parametrize(("make_body", "code"), [
    (lambda: endpoint_body("203.0.113.7"), "endpoint_unparseable"),
    (lambda: endpoint_body("203.0.113.7:0"), "endpoint_unparseable"),
    (lambda: endpoint_body("203.0.113.7:65536"), "endpoint_unparseable"),
    (lambda: endpoint_body("127.0.0.1:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body("169.254.1.1:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body("0.0.0.0:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body("2001:db8::1:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body("[::1]:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body("vpn.example.com:51820"), "endpoint_unparseable"),
    (lambda: endpoint_body(reported_at_offset_s=-3600), "endpoint_clock_skew"),
    (lambda: endpoint_body(reported_at_offset_s=120), "endpoint_clock_skew"),
    (lambda: endpoint_body(nat_type="none"), "malformed_endpoint_request"),
    (lambda: endpoint_body(extra="x"), "malformed_endpoint_request"),
    (lambda: {"endpoint": "203.0.113.7:51820", "nat_type": "unknown"}, "malformed_endpoint_request"),
    (lambda: {"endpoint": 5, "nat_type": "unknown", "reported_at": "2026-01-01T00:00:00Z"},
     "malformed_endpoint_request"),
])
def test_endpoint_rejects_bad_reports_with_their_codes(stack, mesh, make_body, code):
    # Bodies are built when the test runs: reported_at must be fresh, not from collection time.
    a = mesh["a"]
    with node_http(stack, a) as http:
        resp = http.put(f"/v1/nodes/{a.node_id}/endpoint", json=make_body())
    assert resp.status_code == 400 and _code(resp) == code, resp.text


def test_endpoint_order_401_403_413_400(stack, mesh):
    a, b = mesh["a"], mesh["b"]
    url = f"/v1/nodes/{a.node_id}/endpoint"
    huge = b'{"endpoint": "' + b"1" * 5000 + b'"}'
    with stack.http(token="") as anon:
        assert _code(anon.put(url, content=huge)) == "nsk_revoked"
    with node_http(stack, b) as http:
        assert http.put(url, content=huge).json()["code"] == "node_id_mismatch"
    with node_http(stack, a) as http:
        too_large = http.put(url, content=huge, headers={"content-type": "application/json"})
        assert too_large.status_code == 413 and _code(too_large) == "endpoint_body_too_large"
        assert _code(http.put(url, content=b"nope")) == "malformed_endpoint_request"


def test_endpoint_of_an_unanchored_node_is_404(stack):
    # Its own Domain: the bare DELETE bypasses the event log the shared Domain's peer lists follow.
    node = enrol(stack, make_project(stack, make_domain(stack, stack.unique_cidr())))
    stack.sql("DELETE FROM plexsphere.peers WHERE node_id = %s", node.node_id)
    with node_http(stack, node) as http:
        resp = http.put(f"/v1/nodes/{node.node_id}/endpoint", json=endpoint_body())
        bad = http.put(f"/v1/nodes/{node.node_id}/endpoint", json=endpoint_body("localhost:1"))
    assert resp.status_code == 404 and _code(resp) == "endpoint_peer_not_found"
    assert resp.json()["title"] == "Peer Not Found"
    assert bad.status_code == 400  # validation comes before the Peer lookup


# -- state ----------------------------------------------------------------------------------------
def test_state_snapshot_lists_other_peers_sorted_and_is_byte_identical(stack, mesh):
    a, b = mesh["a"], mesh["b"]
    third = enrol(stack, mesh["project_id"])
    with node_http(stack, third) as http:
        first = http.get(f"/v1/nodes/{third.node_id}/state")
        second = http.get(f"/v1/nodes/{third.node_id}/state")
    assert first.status_code == 200, first.text
    assert first.content == second.content
    state = first.json()
    # The contract's six keys, then only our documented additive field.
    assert list(state) == ["peers", "reachability", "policy", "bridge", "state", "reports", "heartbeat_interval",
                           "relays", "stun_port"]
    assert [p["node_id"] for p in state["peers"]] == sorted([a.node_id, b.node_id])
    assert third.node_id not in [p["node_id"] for p in state["peers"]]
    by_id = {p["node_id"]: p for p in state["peers"]}
    assert by_id[b.node_id]["public_key"] == b.public_key and by_id[b.node_id]["mesh_ip"] == b.mesh_ip
    assert state["policy"] is None and state["bridge"] is None
    assert state["state"] == state["reports"] == {"metadata": [], "data": [], "reports": []}
    assert state["reachability"]["state"] == "healthy" and state["reachability"]["last_heartbeat_at"] is None


def test_state_carries_fresh_endpoints_only(stack, mesh):
    a, b = mesh["a"], mesh["b"]
    with node_http(stack, b) as http:
        assert http.put(f"/v1/nodes/{b.node_id}/endpoint", json=endpoint_body("198.51.100.77:4000")).status_code == 200
    with node_http(stack, a) as http:
        peer = next(p for p in http.get(f"/v1/nodes/{a.node_id}/state").json()["peers"] if p["node_id"] == b.node_id)
        assert peer["endpoint"] == "198.51.100.77:4000"
        # Through the sweeper (its tombstone event is how cached peer lists learn), not a bare UPDATE.
        stack.sql("UPDATE plexsphere.peers SET endpoint_stale_after = now() - interval '1 second' WHERE node_id = %s",
                  b.node_id)
        wait_until(lambda: stack.sql_value("SELECT endpoint_stale FROM plexsphere.peers WHERE node_id = %s",
                                           b.node_id), message="the sweeper's tombstone")
        peer = next(p for p in http.get(f"/v1/nodes/{a.node_id}/state").json()["peers"] if p["node_id"] == b.node_id)
        assert "endpoint" not in peer


def test_state_and_reachability_authz(stack, mesh):
    a, b = mesh["a"], mesh["b"]
    from tests.integration.enrolment_helpers import make_user

    outsider = make_user(stack)
    with node_http(stack, b) as http:
        resp = http.get(f"/v1/nodes/{a.node_id}/state")
        assert resp.status_code == 403 and resp.json()["code"] == "node_id_mismatch"
        # mesh.md §6 names reachability's 403 code for every caller lacking node-agent, Nodes included.
        resp = http.get(f"/v1/nodes/{a.node_id}/reachability")
        assert resp.status_code == 403 and resp.json()["code"] == "insufficient_relation"
    with stack.http(token=outsider) as http:
        assert http.get(f"/v1/nodes/{a.node_id}/state").status_code == 403
        denied = http.get(f"/v1/nodes/{a.node_id}/reachability")
        assert denied.status_code == 403 and denied.json()["code"] == "insufficient_relation"
        # 403 before 404: an unknown id is not revealed to someone without the permission.
        assert http.get("/v1/nodes/01900000-0000-7000-8000-000000000000/state").status_code == 403
    with stack.http(token="") as anon:
        assert anon.get(f"/v1/nodes/{a.node_id}/state").status_code == 401
    with stack.http() as admin:  # an operator holding node-agent (platform admin) may read
        assert admin.get(f"/v1/nodes/{a.node_id}/state").status_code == 200
        assert admin.get(f"/v1/nodes/{a.node_id}/reachability").json()["state"] in ("healthy", "stale")
        missing = admin.get("/v1/nodes/01900000-0000-7000-8000-000000000000/reachability")
        assert missing.status_code == 404 and missing.json()["code"] == "node_not_found"
        assert admin.get("/v1/nodes/not-a-uuid/state").json()["code"] == "invalid_node_id"


def test_routes_are_in_our_openapi(stack):
    with stack.http(token="") as http:
        spec = http.get("/v1/openapi.json").json()
    ops = {op["operationId"] for path in spec["paths"].values() for op in path.values() if "operationId" in op}
    assert {"ListNodes", "GetNode", "DeleteNode", "GetNodeState", "PostNodeHeartbeat", "PutNodeEndpoint",
            "GetNodeReachability", "GetNodeEvents", "GetDomainMeshTopology", "GetNodePeerPsk"} <= ops
    assert "requestBody" in spec["paths"]["/v1/nodes/{id}/heartbeat"]["post"]


def test_state_tells_the_node_its_domains_heartbeat_interval(stack):
    """Additive field: agents beat at the Domain's cadence (issue 7) without an operator flag."""
    with stack.http() as http:
        domain = http.post("/v1/domains", json={
            "name": "Cadence", "slug": stack.unique("cadence"), "mesh_cidr": stack.unique_cidr(),
            "reachability": {"heartbeat_interval": "20s", "stale_after": "1m", "unreachable_after": "5m"}}).json()
    project = make_project(stack, domain["id"])
    node = enrol(stack, project)
    with node_http(stack, node) as http:
        state = http.get(f"/v1/nodes/{node.node_id}/state").json()
    assert state["heartbeat_interval"] == "20s"


def test_undecodable_gzip_body_gets_the_routes_own_malformed_code(stack):
    """plexd gzips bodies over 1 KiB; a broken one is the route's malformed_* 400, not a generic code."""
    project = make_project(stack)
    node = enrol(stack, project)
    with node_http(stack, node) as http:
        resp = http.put(f"/v1/nodes/{node.node_id}/endpoint", content=b"\x1f\x8b not gzip",
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_endpoint_request"

