"""Domains over HTTP against a real server: create/get/list/patch/delete and every error code."""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest


def create_domain(stack, **overrides):
    body = {"name": "Test Domain", "slug": stack.unique("d"), "mesh_cidr": stack.unique_cidr()}
    body.update(overrides)
    with stack.http() as http:
        return http.post("/v1/domains", json=body)


def test_create_returns_the_domain_with_defaults(stack):
    resp = create_domain(stack, description="lab")
    assert resp.status_code == 201, resp.text
    domain = resp.json()
    assert uuid.UUID(domain["id"]).version == 7
    assert domain["description"] == "lab"
    assert "region" not in domain  # omitted when unpinned, never ""
    assert domain["reachability"] == {"heartbeat_interval": "30s", "stale_after": "1m30s",
                                      "unreachable_after": "5m0s"}
    assert domain["env"] == "dev"
    assert "max_key_age" not in domain
    assert resp.headers["location"] == f"/v1/domains/{domain['id']}"
    # A fresh Ed25519 signing key, named after the env.
    key_ids = stack.sql("SELECT key_id FROM plexsphere.domain_signing_keys WHERE domain_id = %s", domain["id"])
    assert len(key_ids) == 1 and key_ids[0][0].startswith("did:plexsphere:domain/dev#k1")
    with stack.http() as http:
        got = http.get(f"/v1/domains/{domain['id']}")
    assert got.status_code == 200
    assert got.json() == domain


def test_create_accepts_ipv6_region_env_reachability_and_key_age(stack):
    resp = create_domain(stack, mesh_cidr=f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}::/64",
                         region="eu-west", env="prod",
                         reachability={"heartbeat_interval": "20s", "stale_after": "1m", "unreachable_after": "5m"},
                         max_key_age="720h")
    assert resp.status_code == 201, resp.text
    domain = resp.json()
    assert domain["region"] == "eu-west"
    assert domain["env"] == "prod"
    assert domain["reachability"] == {"heartbeat_interval": "20s", "stale_after": "1m0s",
                                      "unreachable_after": "5m0s"}
    assert domain["max_key_age"] == "720h0m0s"
    key_id = stack.sql_value("SELECT key_id FROM plexsphere.domain_signing_keys WHERE domain_id = %s", domain["id"])
    assert key_id.startswith("did:plexsphere:domain/prod#k1")


@pytest.mark.parametrize("field,value", [
    ("mesh_cidr", "10.0.0.1/24"),       # host bits set: not canonical
    ("mesh_cidr", "not-a-cidr"),
    ("mesh_cidr", "10.200.0.0/32"),     # no room for a host
    ("slug", "Bad_Slug"),
    ("slug", "-x"),
    ("name", "   "),
    ("region", "EU"),
    ("env", "dev1"),
    ("description", "  "),
    ("max_key_age", "soon"),
])
def test_create_rejects_invalid_fields(stack, field, value):
    resp = create_domain(stack, **{field: value})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_domain"


@pytest.mark.parametrize("policy", [
    {"heartbeat_interval": "30s"},                                                    # partial
    {"heartbeat_interval": "5s", "stale_after": "15s", "unreachable_after": "30s"},   # interval < 10s
    {"heartbeat_interval": "30s", "stale_after": "60s", "unreachable_after": "5m"},   # stale < 3x
    {"heartbeat_interval": "30s", "stale_after": "90s", "unreachable_after": "2m"},   # unreachable < 2x stale
    {"heartbeat_interval": "30s", "stale_after": "90s", "unreachable_after": "2h"},   # > 1h
    {"heartbeat_interval": "thirty", "stale_after": "90s", "unreachable_after": "5m"},
])
def test_create_rejects_bad_reachability_policy(stack, policy):
    resp = create_domain(stack, reachability=policy)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "invalid_reachability_policy"


def test_missing_required_field_and_malformed_body(stack):
    with stack.http() as http:
        missing = http.post("/v1/domains", json={"name": "x", "slug": stack.unique("d")})
        malformed = http.post("/v1/domains", content=b"{not json", headers={"content-type": "application/json"})
        too_big = http.post("/v1/domains", json={"name": "x", "slug": "y", "mesh_cidr": "10.0.0.0/8",
                                                 "description": "a" * 9000})
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_domain"
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_body"
    assert too_big.status_code == 413 and too_big.json()["code"] == "request_body_too_large"


def test_slug_and_cidr_conflicts(stack):
    first = create_domain(stack).json()
    dup_slug = create_domain(stack, slug=first["slug"])
    overlap = create_domain(stack, mesh_cidr=first["mesh_cidr"].rsplit("/", 1)[0] + "/25")
    assert dup_slug.status_code == 409 and dup_slug.json()["code"] == "domain_slug_conflict"
    assert overlap.status_code == 409 and overlap.json()["code"] == "mesh_cidr_overlap"


def test_concurrent_creates_with_one_slug_yield_one_domain(stack):
    slug = stack.unique("race")
    cidrs = [stack.unique_cidr() for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda c: create_domain(stack, slug=slug, mesh_cidr=c), cidrs))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 5
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"domain_slug_conflict"}


def test_get_errors(stack):
    with stack.http() as http:
        bad = http.get("/v1/domains/not-a-uuid")
        nil = http.get(f"/v1/domains/{uuid.UUID(int=0)}")
        missing = http.get(f"/v1/domains/{uuid.uuid4()}")
        anonymous = stack.http(token="").get(f"/v1/domains/{stack.domain_id}")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_domain_id"
    assert nil.status_code == 400 and nil.json()["code"] == "invalid_domain_id"
    assert missing.status_code == 404 and missing.json()["code"] == "domain_not_found"
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"


def test_patch_updates_fields(stack):
    domain = create_domain(stack, region="us-east").json()
    with stack.http() as http:
        resp = http.patch(f"/v1/domains/{domain['id']}", json={
            "name": "Renamed", "description": "now described", "region": "",
            "reachability": {"heartbeat_interval": "1m", "stale_after": "3m", "unreachable_after": "10m"},
            "max_key_age": "24h"})
        assert resp.status_code == 200, resp.text
        patched = resp.json()
        assert patched["name"] == "Renamed"
        assert patched["description"] == "now described"
        assert "region" not in patched
        assert patched["reachability"]["heartbeat_interval"] == "1m0s"
        assert patched["max_key_age"] == "24h0m0s"
        assert patched["updated_at"] >= domain["updated_at"]
        cleared = http.patch(f"/v1/domains/{domain['id']}", json={"description": "", "max_key_age": "0s"}).json()
        assert cleared["description"] == ""
        assert "max_key_age" not in cleared


def test_patch_errors(stack):
    domain = create_domain(stack).json()
    url = f"/v1/domains/{domain['id']}"
    with stack.http() as http:
        slug_same = http.patch(url, json={"slug": domain["slug"]})
        empty = http.patch(url, json={})
        unknown = http.patch(url, json={"colour": "blue"})
        bad_cidr = http.patch(url, json={"mesh_cidr": "10.0.0.1/24"})
        missing = http.patch(f"/v1/domains/{uuid.uuid4()}", json={"name": "x"})
    assert slug_same.status_code == 400 and slug_same.json()["code"] == "slug_immutable"
    assert empty.status_code == 400 and empty.json()["code"] == "empty_patch"
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_body"
    assert bad_cidr.status_code == 400 and bad_cidr.json()["code"] == "invalid_domain"
    assert missing.status_code == 404 and missing.json()["code"] == "domain_not_found"


def test_mesh_cidr_retarget_guards(stack):
    domain = create_domain(stack, mesh_cidr=stack.unique_cidr(prefix_len=24)).json()
    other = create_domain(stack).json()
    url = f"/v1/domains/{domain['id']}"
    base = domain["mesh_cidr"].split("/")[0].rsplit(".", 1)[0]  # e.g. 10.128.5
    with stack.http() as http:
        overlap = http.patch(url, json={"mesh_cidr": other["mesh_cidr"]})
        assert overlap.status_code == 409 and overlap.json()["code"] == "mesh_cidr_overlap"
        project = http.post("/v1/projects", json={"domain_id": domain["id"], "name": "P", "slug": "p",
                                                  "sub_range_cidr": f"{base}.128/25"})
        assert project.status_code == 201, project.text
        stranding = http.patch(url, json={"mesh_cidr": f"{base}.0/25"})
        assert stranding.status_code == 422
        assert stranding.json()["code"] == "mesh_cidr_invalidates_subrange"
        assert project.json()["id"] in stranding.json()["detail"]
        ok = http.patch(url, json={"mesh_cidr": f"{base}.128/25"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["mesh_cidr"] == f"{base}.128/25"
    # The allocator's pool follows the new prefix.
    assert stack.sql_value("SELECT last_offset FROM plexsphere.address_pools WHERE domain_id = %s",
                           domain["id"]) == 126


def test_delete_guard_counts_children_then_deletes(stack):
    domain = create_domain(stack).json()
    with stack.http() as http:
        project = http.post("/v1/projects", json={"domain_id": domain["id"], "name": "P", "slug": "only"}).json()
        blocked = http.delete(f"/v1/domains/{domain['id']}")
        assert blocked.status_code == 409
        body = blocked.json()
        assert body["code"] == "domain_not_empty"
        assert body["child_counts"] == {"projects": 1, "groups": 0, "identities": 0, "idp_bindings": 0, "nodes": 0}
        assert "1 project" in body["detail"]
        # The creator's grant on the project must land before it can delete it.
        from tests.conftest import wait_until
        wait_until(lambda: http.get(f"/v1/projects/{project['id']}").status_code == 200)
        assert http.delete(f"/v1/projects/{project['id']}").status_code == 204
        assert http.delete(f"/v1/domains/{domain['id']}").status_code == 204
        assert http.get(f"/v1/domains/{domain['id']}").status_code == 404
        assert http.delete(f"/v1/domains/{domain['id']}").status_code == 404
    assert stack.sql_value("SELECT count(*) FROM plexsphere.domain_signing_keys WHERE domain_id = %s",
                           domain["id"]) == 0
    assert stack.sql_value("SELECT count(*) FROM plexsphere.relation_tuples WHERE object_id = %s OR subject_id = %s",
                           domain["id"], domain["id"]) == 0


def test_seeded_domain_with_its_admin_identity_is_not_deletable(stack):
    with stack.http() as http:
        resp = http.delete(f"/v1/domains/{stack.domain_id}")
    assert resp.status_code == 409
    assert resp.json()["child_counts"]["identities"] >= 1


def test_list_is_slug_ordered_and_paginates(stack):
    prefix = stack.unique("pg")
    for i in range(5):
        assert create_domain(stack, slug=f"{prefix}-{i}").status_code == 201
    with stack.http() as http:
        seen = []
        cursor = None
        while True:
            params = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/domains", params=params).json()
            assert len(page["items"]) <= 2
            seen += [d["slug"] for d in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert [s for s in seen if s.startswith(prefix)] == [f"{prefix}-{i}" for i in range(5)]
    assert "acme-corp" in seen


def test_list_limit_bounds_and_cursor_tampering(stack):
    with stack.http() as http:
        for bad in ("0", "201", "abc"):
            resp = http.get("/v1/domains", params={"limit": bad})
            assert resp.status_code == 400 and resp.json()["code"] == "invalid_limit"
        cursor = http.get("/v1/domains", params={"limit": 1}).json()["next_cursor"]
        assert cursor
        body, mac = cursor.split(".")
        tampered = http.get("/v1/domains", params={"cursor": body[:-2] + "AA." + mac})
        assert tampered.status_code == 400 and tampered.json()["code"] == "invalid_cursor"
        garbage = http.get("/v1/domains", params={"cursor": "garbage"})
        assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_cursor"


def test_concurrent_project_create_and_domain_delete_never_both_win(stack):
    outcomes = set()
    for _ in range(8):
        domain = create_domain(stack).json()

        def create_project(domain_id=domain["id"]):
            with stack.http() as http:
                return http.post("/v1/projects", json={"domain_id": domain_id, "name": "P", "slug": "racer"})

        def delete_domain(domain_id=domain["id"]):
            with stack.http() as http:
                return http.delete(f"/v1/domains/{domain_id}")

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            created_f, deleted_f = pool.submit(create_project), pool.submit(delete_domain)
            created, deleted = created_f.result(), deleted_f.result()
        pair = (created.status_code, deleted.status_code)
        assert pair in {(201, 409), (409, 204)}, (pair, created.text, deleted.text)
        if pair == (409, 204):
            assert created.json()["code"] == "parent_domain_missing"
            assert stack.sql_value("SELECT count(*) FROM plexsphere.projects WHERE domain_id = %s", domain["id"]) == 0
        else:
            assert deleted.json()["code"] == "domain_not_empty"
        outcomes.add(pair)
