"""Operator inventory: `GET /v1/nodes` (filters, pagination, per-row visibility) and node deletion."""

from __future__ import annotations

import pytest
from tests.integration.enrolment_helpers import make_user
from tests.integration.mesh_helpers import enrol, heartbeat_body, make_domain, make_project, node_http


@pytest.fixture(scope="module")
def fleet(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    p1, p2 = make_project(stack, domain_id), make_project(stack, domain_id)
    nodes = [enrol(stack, p1), enrol(stack, p1), enrol(stack, p2)]
    return {"domain_id": domain_id, "p1": p1, "p2": p2, "nodes": nodes}


def test_list_filters_and_paginates(stack, fleet):
    ids = [n.node_id for n in fleet["nodes"]]
    with stack.http() as http:
        everything = http.get("/v1/nodes", params={"domain_id": str(fleet["domain_id"])}).json()
        assert [n["id"] for n in everything["items"]] == ids and everything["next_cursor"] is None
        item = everything["items"][0]
        assert {"id", "domain_id", "created_at", "name", "kind", "project_id", "mesh_ip", "reachability"} <= set(item)
        assert item["reachability"] == "healthy" and item["mesh_ip"] == fleet["nodes"][0].mesh_ip
        p2_only = http.get("/v1/nodes", params={"project_id": str(fleet["p2"])}).json()
        assert [n["id"] for n in p2_only["items"]] == ids[2:]
        pages, cursor = [], None
        while True:
            page = http.get("/v1/nodes", params={"domain_id": str(fleet["domain_id"]), "limit": 1,
                                                 **({"cursor": cursor} if cursor else {})}).json()
            pages.append([n["id"] for n in page["items"]])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert pages == [[i] for i in ids]
        first = http.get("/v1/nodes", params={"domain_id": str(fleet["domain_id"]), "limit": 1}).json()
        assert http.get("/v1/nodes", params={"limit": 0}).json()["code"] == "invalid_limit"
        assert http.get("/v1/nodes", params={"limit": 201}).status_code == 400
        assert http.get("/v1/nodes", params={"domain_id": "x"}).json()["code"] == "invalid_domain_filter"
        assert http.get("/v1/nodes", params={"cursor": "garbage"}).json()["code"] == "invalid_cursor"
    viewer = make_user(stack, (("project", str(fleet["p1"]), "viewer"),))
    with stack.http(token=viewer) as http:
        stolen = http.get("/v1/nodes", params={"domain_id": str(fleet["domain_id"]), "limit": 1,
                                               "cursor": first["next_cursor"]})
        assert stolen.status_code == 403 and stolen.json()["code"] == "cursor_binding_mismatch"


def test_list_shows_only_nodes_the_caller_may_view(stack, fleet):
    ids = [n.node_id for n in fleet["nodes"]]
    viewer = make_user(stack, (("project", str(fleet["p1"]), "viewer"),))
    domain_viewer = make_user(stack, (("domain", str(fleet["domain_id"]), "viewer"),))
    nobody = make_user(stack)
    with stack.http(token=viewer) as http:
        assert [n["id"] for n in http.get("/v1/nodes").json()["items"]] == ids[:2]
        assert http.get(f"/v1/nodes/{ids[0]}").status_code == 200
        assert http.get(f"/v1/nodes/{ids[2]}").status_code == 403
    with stack.http(token=domain_viewer) as http:
        assert [n["id"] for n in http.get("/v1/nodes").json()["items"]] == ids
    with stack.http(token=nobody) as http:
        assert http.get("/v1/nodes").json() == {"items": [], "next_cursor": None}
    with stack.http(token="") as anon:
        assert anon.get("/v1/nodes").status_code == 401


def test_delete_removes_everything_and_frees_the_address(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    keep, gone = enrol(stack, project_id), enrol(stack, project_id)
    viewer = make_user(stack, (("project", str(project_id), "viewer"),))
    with stack.http(token=viewer) as http:  # viewing is not operating; and no existence oracle
        assert http.delete(f"/v1/nodes/{gone.node_id}").status_code == 403
        assert http.delete("/v1/nodes/01900000-0000-7000-8000-000000000000").status_code == 403
    with stack.http() as admin:
        assert admin.delete(f"/v1/nodes/{gone.node_id}").status_code == 204
        again = admin.delete(f"/v1/nodes/{gone.node_id}")
        assert again.status_code == 404 and again.json()["code"] == "node_not_found"
        assert admin.delete("/v1/nodes/zzz").json()["code"] == "invalid_node_id"
    for table in ("nodes", "peers", "node_psks"):
        column = "id" if table == "nodes" else "node_id"
        assert stack.sql_value(f"SELECT count(*) FROM plexsphere.{table} WHERE {column} = %s", gone.node_id) == 0
    assert stack.sql_value("SELECT count(*) FROM plexsphere.relation_tuples WHERE object_id = %s OR subject_id = %s",
                           gone.node_id, gone.node_id) == 0
    assert stack.sql("SELECT type FROM plexsphere.events WHERE domain_id = %s ORDER BY seq DESC LIMIT 1",
                     domain_id) == [("peer_removed",)]
    with node_http(stack, gone) as http:
        assert http.post(f"/v1/nodes/{gone.node_id}/heartbeat", json=heartbeat_body()).status_code == 401
    with node_http(stack, keep) as http:
        assert http.post(f"/v1/nodes/{keep.node_id}/heartbeat", json=heartbeat_body()).status_code == 200
        assert [p["node_id"] for p in http.get(f"/v1/nodes/{keep.node_id}/state").json()["peers"]] == []
    # The freed address is the lowest free one again.
    assert enrol(stack, project_id).mesh_ip == gone.mesh_ip
