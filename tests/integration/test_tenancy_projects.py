"""Projects and Resources over HTTP against a real server."""

from __future__ import annotations

import uuid

import pytest
from tests.conftest import wait_until
from tests.integration.tenancy_support import new_domain


def post_project(http, domain_id, slug, **extra):
    return http.post("/v1/projects", json={"domain_id": str(domain_id), "name": "Project", "slug": slug, **extra})


def test_create_and_get_project(stack):
    with stack.http() as http:
        resp = post_project(http, stack.domain_id, stack.unique("p"), description="fleet")
        assert resp.status_code == 201, resp.text
        project = resp.json()
        assert project["domain_id"] == str(stack.domain_id)
        assert project["description"] == "fleet"
        assert project["sub_range_cidr"] is None
        assert uuid.UUID(project["id"]).version == 7
        got = wait_until(lambda: (r := http.get(f"/v1/projects/{project['id']}")).status_code == 200 and r)
        assert got.json() == project


def test_project_create_errors(stack):
    domain = new_domain(stack)
    base = domain["mesh_cidr"].split("/")[0].rsplit(".", 1)[0]
    with stack.http() as http:
        slug = stack.unique("p")
        assert post_project(http, domain["id"], slug).status_code == 201
        dup = post_project(http, domain["id"], slug)
        assert dup.status_code == 409 and dup.json()["code"] == "project_slug_conflict"
        # Same slug in another Domain is fine.
        assert post_project(http, stack.domain_id, slug).status_code == 201
        for bad in ({"slug": "Nope"}, {"domain_id": "x"}, {"name": " "}, {"sub_range_cidr": "10.0.0.1/24"}):
            body = {"domain_id": domain["id"], "name": "P", "slug": stack.unique("p"), **bad}
            resp = http.post("/v1/projects", json=body)
            assert resp.status_code == 400 and resp.json()["code"] == "invalid_project", (bad, resp.text)
        outside = post_project(http, domain["id"], stack.unique("p"), sub_range_cidr="192.168.0.0/28")
        assert outside.status_code == 400 and outside.json()["code"] == "invalid_project"
        assert post_project(http, domain["id"], stack.unique("p"), sub_range_cidr=f"{base}.0/26").status_code == 201
        overlap = post_project(http, domain["id"], stack.unique("p"), sub_range_cidr=f"{base}.32/27")
        assert overlap.status_code == 409 and overlap.json()["code"] == "sub_range_overlap"
        # The platform admin reaches any Domain id, so a missing parent is reported as such.
        missing = post_project(http, uuid.uuid4(), stack.unique("p"))
        assert missing.status_code == 409 and missing.json()["code"] == "parent_domain_missing"


def test_project_patch(stack):
    domain = new_domain(stack)
    base = domain["mesh_cidr"].split("/")[0].rsplit(".", 1)[0]
    project = stack.create_project(domain_id=domain["id"])
    sibling = stack.create_project(domain_id=domain["id"])
    url = f"/v1/projects/{project['id']}"
    with stack.http() as http:
        assert http.patch(f"/v1/projects/{sibling['id']}", json={"sub_range_cidr": f"{base}.128/25"}).status_code == 200
        resp = http.patch(url, json={"name": "Renamed", "description": "d", "sub_range_cidr": f"{base}.0/26"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["name"] == "Renamed" and resp.json()["sub_range_cidr"] == f"{base}.0/26"
        overlap = http.patch(url, json={"sub_range_cidr": f"{base}.128/26"})
        assert overlap.status_code == 409 and overlap.json()["code"] == "sub_range_overlap"
        released = http.patch(url, json={"release_sub_range": True})
        assert released.status_code == 200 and released.json()["sub_range_cidr"] is None
        both = http.patch(url, json={"release_sub_range": True, "sub_range_cidr": f"{base}.0/26"})
        assert both.status_code == 422 and both.json()["code"] == "sub_range_invalidates_allocation"
        slug = http.patch(url, json={"slug": project["slug"]})
        assert slug.status_code == 400 and slug.json()["code"] == "slug_immutable"
        empty = http.patch(url, json={})
        assert empty.status_code == 400 and empty.json()["code"] == "empty_patch"
        unknown = http.patch(url, json={"owner": "me"})
        assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_body"
        bad_id = http.patch("/v1/projects/nope", json={"name": "x"})
        assert bad_id.status_code == 400 and bad_id.json()["code"] == "invalid_project_id"


def test_project_list_filter_order_and_pagination(stack):
    domain = new_domain(stack)
    slugs = [f"{stack.unique('lp')}-{i}" for i in range(5)]
    for slug in reversed(slugs):
        stack.create_project(slug=slug, domain_id=domain["id"])
    with stack.http() as http:
        seen, cursor = [], None
        while True:
            params = {"domain_id": domain["id"], "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/projects", params=params).json()
            seen += [p["slug"] for p in page["items"]]
            assert all(p["domain_id"] == domain["id"] for p in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert seen == sorted(slugs)
        bad = http.get("/v1/projects", params={"domain_id": "not-a-uuid"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_domain_filter"
        # A cursor of one filtered listing does not continue another.
        first = http.get("/v1/projects", params={"domain_id": domain["id"], "limit": 1}).json()
        cross = http.get("/v1/projects", params={"cursor": first["next_cursor"]})
        assert cross.status_code == 400 and cross.json()["code"] == "invalid_cursor"


def test_project_delete_guard(stack):
    project = stack.create_project()
    with stack.http() as http:
        resource = http.post(f"/v1/projects/{project['id']}/resources", json={"origin": "adopted", "kind": "vm",
                                                                             "external_ref": "vm-1"})
        assert resource.status_code == 201, resource.text
        blocked = http.delete(f"/v1/projects/{project['id']}")
        assert blocked.status_code == 409
        assert blocked.json()["code"] == "project_not_empty"
        assert blocked.json()["project_child_counts"] == {"resources": 1, "nodes": 0, "relation_tuples": 0}
        wait_until(lambda: http.get(f"/v1/resources/{resource.json()['id']}").status_code == 200)
        assert http.delete(f"/v1/resources/{resource.json()['id']}").status_code == 204
        assert http.delete(f"/v1/projects/{project['id']}").status_code == 204
        # The mirrored grants went with it, so even the admin is now simply told it is gone.
        assert http.get(f"/v1/projects/{project['id']}").status_code in (403, 404)
    assert stack.sql_value("SELECT count(*) FROM plexsphere.relation_tuples WHERE object_id = %s",
                           project["id"]) == 0


def test_resources_create_list_get_delete(stack):
    project = stack.create_project()
    base = f"/v1/projects/{project['id']}/resources"
    with stack.http() as http:
        created = []
        for i in range(3):
            resp = http.post(base, json={"origin": "adopted", "kind": "vm", "external_ref": f"edge-{i}"})
            assert resp.status_code == 201, resp.text
            created.append(resp.json())
        r0 = created[0]
        assert r0["origin"] == "adopted" and r0["handle"] == "edge-0" and r0["domain_id"] == str(stack.domain_id)
        assert "provisioning" not in r0
        named = http.post(base, json={"origin": "adopted", "kind": "vm", "handle": "router-a"}).json()
        assert named["handle"] == "router-a" and named["external_ref"] is None
        dup = http.post(base, json={"origin": "adopted", "kind": "vm", "handle": "router-a"})
        assert dup.status_code == 409 and dup.json()["code"] == "resource_handle_conflict"
        ids, cursor = [], None
        while True:
            page = http.get(base, params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            ids += [r["id"] for r in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert ids == [r["id"] for r in created] + [named["id"]]  # creation order
        got = wait_until(lambda: (r := http.get(f"/v1/resources/{r0['id']}")).status_code == 200 and r)
        assert got.json() == r0
        assert http.delete(f"/v1/resources/{r0['id']}").status_code == 204
        assert http.get(f"/v1/resources/{r0['id']}").status_code in (403, 404)


@pytest.mark.parametrize("body,code,status", [
    ({"kind": "vm"}, "invalid_resource_origin", 400),
    ({"origin": "borrowed", "kind": "vm"}, "invalid_resource_origin", 400),
    ({"origin": "adopted"}, "invalid_body", 400),
    ({"origin": "adopted", "kind": "  "}, "invalid_body", 400),
    ({"origin": "adopted", "kind": "vm", "blueprint_version_id": str(uuid.uuid4())}, "invalid_body", 400),
    ({"origin": "provisioned", "kind": "vm", "blueprint_version_id": str(uuid.uuid4()),
      "cloud_credential_id": str(uuid.uuid4())}, "resources_not_provisioned", 501),
])
def test_resource_create_errors(stack, body, code, status):
    project = stack.create_project()
    with stack.http() as http:
        resp = http.post(f"/v1/projects/{project['id']}/resources", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code


def test_resource_id_and_project_errors(stack):
    with stack.http() as http:
        assert http.get("/v1/resources/xyz").json()["code"] == "invalid_resource_id"
        assert http.delete("/v1/resources/xyz").json()["code"] == "invalid_resource_id"
        assert http.get("/v1/projects/xyz/resources").json()["code"] == "invalid_project_id"
        # Unknown ids: nobody holds a permission on them, so authorization answers first.
        assert http.get(f"/v1/resources/{uuid.uuid4()}").status_code == 403
        assert http.get(f"/v1/projects/{uuid.uuid4()}/resources").status_code == 403
