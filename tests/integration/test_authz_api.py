"""The ReBAC API over HTTP: check, lookups and project-scoped relation tuples."""

from __future__ import annotations

import uuid

import pytest
from tests.integration.tenancy_support import make_operator


@pytest.fixture(scope="module")
def project(stack):
    return stack.create_project()


def test_check_allows_with_path_and_denies_with_200(stack, project):
    admin = f"user:{stack.admin_id}"
    with stack.http() as http:
        allowed = http.post("/v1/authz/check", json={"subject": admin, "relation": "manage",
                                                     "resource": f"project:{project['id']}"})
        assert allowed.status_code == 200
        body = allowed.json()
        assert body["decision"] == "allowed"
        assert body["relation_path"][-1].endswith("#admin")
        assert body["correlation_id"].startswith("rebac-")
        stranger = make_operator(stack)
        denied = http.post("/v1/authz/check", json={"subject": stranger.subject, "relation": "read",
                                                    "resource": f"project:{project['id']}"})
        assert denied.status_code == 200
        assert denied.json()["decision"] == "denied" and denied.json()["reason"] == "out_of_scope"
        assert "relation_path" not in denied.json()


@pytest.mark.parametrize("body", [
    {"subject": "user", "relation": "read", "resource": "project:x"},
    {"subject": "user:1", "relation": "", "resource": "project:x"},
    {"subject": "user:1", "relation": "read", "resource": "galaxy:x"},
    {"subject": "user:1", "relation": "fly", "resource": "project:x"},
    {"relation": "read", "resource": "project:x"},
])
def test_check_request_errors(stack, body):
    with stack.http() as http:
        resp = http.post("/v1/authz/check", json=body)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_check_request"


def test_check_body_errors(stack):
    with stack.http() as http:
        malformed = http.post("/v1/authz/check", content=b"[", headers={"content-type": "application/json"})
        too_big = http.post("/v1/authz/check", json={"subject": "u:" + "x" * 9000, "relation": "r", "resource": "p:1"})
        anonymous = stack.http(token="").post("/v1/authz/check", json={})
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_body"
    assert too_big.status_code == 413
    assert anonymous.status_code == 401


def test_lookups(stack, project):
    admin = f"user:{stack.admin_id}"
    viewer = make_operator(stack)
    with stack.http() as http:
        http.post("/v1/authz/relation-tuples", params={"project_id": project["id"]},
                  json={"subject": viewer.subject, "relation": "viewer", "resource": f"project:{project['id']}"})
        resources = http.post("/v1/authz/lookup-resources", json={"subject": viewer.subject, "relation": "read",
                                                                  "resource_type": "project"}).json()
        assert resources["items"] == [f"project:{project['id']}"] and resources["correlation_id"]
        mine = http.post("/v1/authz/lookup-resources", json={"subject": admin, "relation": "read",
                                                             "resource_type": "domain"}).json()
        assert f"domain:{stack.domain_id}" in mine["items"]
        subjects = http.post("/v1/authz/lookup-subjects", json={"subject_type": "user", "relation": "read",
                                                                "resource": f"project:{project['id']}"}).json()
        # The creator (project admin) and the viewer; platform admins reach it through the hierarchy.
        assert set(subjects["items"]) >= {admin, viewer.subject}
        admins = http.post("/v1/authz/lookup-subjects", json={"subject_type": "user", "relation": "manage",
                                                              "resource": f"project:{project['id']}"}).json()
        assert viewer.subject not in admins["items"] and admin in admins["items"]
        bad = http.post("/v1/authz/lookup-resources", json={"subject": admin, "relation": "read",
                                                            "resource_type": "galaxy"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_lookup_request"
        bad2 = http.post("/v1/authz/lookup-subjects", json={"subject_type": "robot", "relation": "read",
                                                            "resource": f"project:{project['id']}"})
        assert bad2.status_code == 400 and bad2.json()["code"] == "invalid_lookup_request"


def test_relation_tuple_lifecycle(stack):
    pid = stack.create_project()["id"]
    member = make_operator(stack)
    with stack.http() as http:
        created = http.post("/v1/authz/relation-tuples", params={"project_id": pid},
                            json={"subject": member.subject, "relation": "member", "resource": f"project:{pid}"})
        assert created.status_code == 201, created.text
        tup = created.json()
        assert created.headers["location"] == f"/v1/authz/relation-tuples/{tup['id']}"
        assert tup["subject"] == member.subject and tup["relation"] == "member"
        again = http.post("/v1/authz/relation-tuples", params={"project_id": pid},
                          json={"subject": member.subject, "relation": "member", "resource": f"project:{pid}"})
        assert again.status_code == 201 and again.json()["id"] == tup["id"]  # idempotent
        with stack.http(member.token) as as_member:
            assert as_member.get(f"/v1/projects/{pid}").status_code == 200
            # member may read tuples but not manage them
            assert as_member.get("/v1/authz/relation-tuples", params={"project_id": pid}).status_code == 200
            assert as_member.delete(f"/v1/authz/relation-tuples/{tup['id']}").status_code == 403
        replaced = http.patch(f"/v1/authz/relation-tuples/{tup['id']}",
                              json={"subject": member.subject, "relation": "viewer", "resource": f"project:{pid}"})
        assert replaced.status_code == 200 and replaced.json()["relation"] == "viewer"
        assert replaced.json()["id"] == tup["id"]
        listed = http.get("/v1/authz/relation-tuples", params={"project_id": pid}).json()["items"]
        assert [t["relation"] for t in listed if t["subject"] == member.subject] == ["viewer"]
        assert any(t["relation"] == "parent" for t in listed)  # the mirror's tuples are listed too
        blocked = http.delete(f"/v1/projects/{pid}")
        assert blocked.status_code == 409 and blocked.json()["project_child_counts"]["relation_tuples"] == 1
        assert http.delete(f"/v1/authz/relation-tuples/{tup['id']}").status_code == 204
        second = http.delete(f"/v1/authz/relation-tuples/{tup['id']}")
        assert second.status_code == 404 and second.json()["code"] == "relation_tuple_not_found"
        with stack.http(member.token) as as_member:
            assert as_member.get(f"/v1/projects/{pid}").status_code == 403


def test_relation_tuple_pagination(stack):
    project = stack.create_project()
    pid = project["id"]
    with stack.http() as http:
        for _ in range(5):
            http.post("/v1/authz/relation-tuples", params={"project_id": pid},
                      json={"subject": f"user:{uuid.uuid4()}", "relation": "viewer", "resource": f"project:{pid}"})
        ids, cursor = [], None
        while True:
            page = http.get("/v1/authz/relation-tuples",
                            params={"project_id": pid, "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            assert len(page["items"]) <= 2
            ids += [t["id"] for t in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert len(ids) == len(set(ids)) == 7  # 5 grants + the mirror's parent and creator-admin tuples


@pytest.mark.parametrize("body", [
    {"subject": "user:not-a-uuid", "relation": "viewer", "resource": "project:{pid}"},
    {"subject": "robot:{uid}", "relation": "viewer", "resource": "project:{pid}"},
    {"subject": "user:{uid}", "relation": "parent", "resource": "project:{pid}"},
    {"subject": "user:{uid}", "relation": "owner", "resource": "project:{pid}"},
    {"subject": "user:{uid}", "relation": "viewer", "resource": "project:{other}"},
    {"subject": "user:{uid}", "relation": "admin", "resource": "platform:plexsphere"},
    {"subject": "user:{uid}", "relation": "viewer", "resource": "project:{pid}", "caveat_name": "from_cidr"},
])
def test_invalid_relation_tuples(stack, project, body):
    fill = {"pid": project["id"], "uid": uuid.uuid4(), "other": uuid.uuid4()}
    body = {k: v.format(**fill) for k, v in body.items()}
    with stack.http() as http:
        resp = http.post("/v1/authz/relation-tuples", params={"project_id": project["id"]}, json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_relation_tuple"


def test_relation_tuple_id_and_project_errors(stack):
    with stack.http() as http:
        assert http.get("/v1/authz/relation-tuples").json()["code"] == "invalid_project_id"
        assert http.delete("/v1/authz/relation-tuples/nope").json()["code"] == "invalid_relation_tuple_id"
        missing = http.post("/v1/authz/relation-tuples", params={"project_id": str(uuid.uuid4())},
                            json={"subject": f"user:{uuid.uuid4()}", "relation": "viewer",
                                  "resource": f"project:{uuid.uuid4()}"})
        # Nobody manages a Project that does not exist - except the platform admin, who learns it is missing.
        assert missing.status_code in (403, 404)
