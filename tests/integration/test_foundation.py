"""Foundation: meta routes and the problem+json error shape, against a real server process."""

from __future__ import annotations


def test_health_reports_the_datastore(stack):
    with stack.http(token="") as http:
        resp = http.get("/v1/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert {c["name"] for c in body["checks"]} == {"datastore"}


def test_version_and_openapi_describe_the_server(stack):
    with stack.http(token="") as http:
        version = http.get("/v1/version").json()
        spec = http.get("/v1/openapi.json").json()
    assert version["version"]
    assert spec["openapi"].startswith("3.")
    assert "/v1/health" in spec["paths"]


def test_unknown_route_is_a_problem_not_html(stack):
    with stack.http(token="") as http:
        resp = http.get("/v1/does-not-exist")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == "https://plexsphere.com/errors/not-found"
    assert body["instance"] == "/v1/does-not-exist"
