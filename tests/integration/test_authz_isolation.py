"""Isolation: an admin of Domain A only is refused (403, before any existence check) on every
Domain-B route and sees none of B's rows in any list; a viewer reads but cannot mutate."""

from __future__ import annotations

import uuid

import pytest
from tests.conftest import wait_until
from tests.integration.tenancy_support import make_operator, new_domain


@pytest.fixture(scope="module")
def world(stack):
    a = new_domain(stack)
    b = new_domain(stack)
    project_b = stack.create_project(domain_id=b["id"])
    with stack.http() as http:
        resource_b = http.post(f"/v1/projects/{project_b['id']}/resources",
                               json={"origin": "adopted", "kind": "vm", "handle": "b-res"}).json()
        wait_until(lambda: http.get(f"/v1/resources/{resource_b['id']}").status_code == 200)
        viewer_of_b = make_operator(stack, b["id"])
        tuple_b = http.post("/v1/authz/relation-tuples", params={"project_id": project_b["id"]},
                            json={"subject": viewer_of_b.subject, "relation": "viewer",
                                  "resource": f"project:{project_b['id']}"}).json()
    admin_a = make_operator(stack, a["id"], grants=[("domain", a["id"], "admin")])
    viewer_a = make_operator(stack, a["id"], grants=[("domain", a["id"], "viewer")])
    identity_b = stack.sql_value("SELECT id FROM plexsphere.identities WHERE domain_id = %s LIMIT 1", b["id"])
    return {"a": a, "b": b, "project_b": project_b, "resource_b": resource_b, "tuple_b": tuple_b,
            "admin_a": admin_a, "viewer_a": viewer_a, "identity_b": identity_b}


def b_routes(w):
    b, pb, rb = w["b"]["id"], w["project_b"]["id"], w["resource_b"]["id"]
    return [
        ("GET", f"/v1/domains/{b}", None),
        ("PATCH", f"/v1/domains/{b}", {"name": "pwned"}),
        ("DELETE", f"/v1/domains/{b}", None),
        ("GET", f"/v1/domains/{b}/identities", None),
        ("GET", f"/v1/domains/{b}/identities/{w['identity_b']}", None),
        ("POST", "/v1/projects", {"domain_id": b, "name": "x", "slug": "sneaky"}),
        ("GET", f"/v1/projects/{pb}", None),
        ("PATCH", f"/v1/projects/{pb}", {"name": "pwned"}),
        ("DELETE", f"/v1/projects/{pb}", None),
        ("GET", f"/v1/projects/{pb}/resources", None),
        ("POST", f"/v1/projects/{pb}/resources", {"origin": "adopted", "kind": "vm"}),
        ("GET", f"/v1/resources/{rb}", None),
        ("DELETE", f"/v1/resources/{rb}", None),
        ("GET", f"/v1/authz/relation-tuples?project_id={pb}", None),
        ("POST", f"/v1/authz/relation-tuples?project_id={pb}",
         {"subject": f"user:{uuid.uuid4()}", "relation": "admin", "resource": f"project:{pb}"}),
        ("POST", "/v1/domains", {"name": "x", "slug": "nope", "mesh_cidr": "10.127.0.0/24"}),
    ]


def test_domain_a_admin_is_refused_on_every_domain_b_route(stack, world):
    with stack.http(world["admin_a"].token) as http:
        for method, url, body in b_routes(world):
            resp = http.request(method, url, json=body)
            assert resp.status_code == 403, (method, url, resp.text)
            problem = resp.json()
            assert problem["title"] == "Permission Denied"
            assert problem["reason"] in ("out_of_scope", "insufficient_relation")
            assert problem["correlation_id"]
        # Tuples it cannot even see are reported missing, exactly like ids that never existed.
        hidden = http.delete(f"/v1/authz/relation-tuples/{world['tuple_b']['id']}")
        never = http.delete(f"/v1/authz/relation-tuples/{uuid.uuid4()}")
        assert hidden.status_code == never.status_code == 404
    # Nothing changed in B.
    assert stack.sql_value("SELECT name FROM plexsphere.domains WHERE id = %s", world["b"]["id"]) == "Domain"
    assert stack.sql_value("SELECT count(*) FROM plexsphere.relation_tuples WHERE id = %s",
                           world["tuple_b"]["id"]) == 1


def test_authorization_comes_before_existence(stack, world):
    with stack.http(world["admin_a"].token) as http:
        for url in (f"/v1/domains/{uuid.uuid4()}", f"/v1/projects/{uuid.uuid4()}", f"/v1/resources/{uuid.uuid4()}"):
            assert http.get(url).status_code == 403, url


def test_domain_a_admin_sees_none_of_b_in_lists(stack, world):
    a, b = world["a"]["id"], world["b"]["id"]
    with stack.http(world["admin_a"].token) as http:
        domains = http.get("/v1/domains", params={"limit": 200}).json()
        assert [d["id"] for d in domains["items"]] == [a]
        assert domains["empty_reason"] is None
        projects = http.get("/v1/projects").json()
        assert all(p["domain_id"] == a for p in projects["items"])
        only_b = http.get("/v1/projects", params={"domain_id": b}).json()
        assert only_b["items"] == [] and only_b["empty_reason"] == "no_rebac_membership"
        lookup = http.post("/v1/authz/lookup-resources", json={
            "subject": world["admin_a"].subject, "relation": "read", "resource_type": "domain"}).json()
        assert lookup["items"] == [f"domain:{a}"]
        # Asking about someone else's reach shows only what the caller could see itself.
        admin_reach = http.post("/v1/authz/lookup-resources", json={
            "subject": f"user:{stack.admin_id}", "relation": "read", "resource_type": "domain"}).json()
        assert admin_reach["items"] == [f"domain:{a}"]
        other_check = http.post("/v1/authz/check", json={
            "subject": f"user:{stack.admin_id}", "relation": "read", "resource": f"domain:{b}"}).json()
        assert other_check["decision"] == "denied"


def test_domain_a_admin_manages_its_own_domain(stack, world):
    a = world["a"]["id"]
    with stack.http(world["admin_a"].token) as http:
        assert http.get(f"/v1/domains/{a}").status_code == 200
        assert http.patch(f"/v1/domains/{a}", json={"description": "mine"}).status_code == 200
        created = http.post("/v1/projects", json={"domain_id": a, "name": "A1", "slug": stack.unique("a")})
        assert created.status_code == 201
        project_id = created.json()["id"]
        wait_until(lambda: http.get(f"/v1/projects/{project_id}").status_code == 200)
        assert http.get(f"/v1/domains/{a}/identities").status_code == 200


def test_viewer_reads_but_cannot_mutate(stack, world):
    a = world["a"]["id"]
    with stack.http(world["viewer_a"].token) as http:
        assert http.get(f"/v1/domains/{a}").status_code == 200
        assert [d["id"] for d in http.get("/v1/domains").json()["items"]] == [a]
        for method, url, body in [
            ("PATCH", f"/v1/domains/{a}", {"name": "x"}),
            ("DELETE", f"/v1/domains/{a}", None),
            ("POST", "/v1/projects", {"domain_id": a, "name": "x", "slug": stack.unique("v")}),
        ]:
            resp = http.request(method, url, json=body)
            assert resp.status_code == 403, (method, url, resp.text)
            assert resp.json()["reason"] == "insufficient_relation"


def test_operator_without_any_grant_gets_empty_reason(stack):
    nobody = make_operator(stack)
    with stack.http(nobody.token) as http:
        domains = http.get("/v1/domains").json()
        projects = http.get("/v1/projects").json()
    assert domains == {"items": [], "next_cursor": None, "empty_reason": "no_rebac_membership"}
    assert projects["items"] == [] and projects["empty_reason"] == "no_rebac_membership"


def test_cursor_is_bound_to_its_caller(stack, world):
    with stack.http() as http:
        cursor = http.get("/v1/domains", params={"limit": 1}).json()["next_cursor"]
    with stack.http(world["admin_a"].token) as http:
        resp = http.get("/v1/domains", params={"cursor": cursor})
    assert resp.status_code == 403 and resp.json()["code"] == "cursor_binding_mismatch"
