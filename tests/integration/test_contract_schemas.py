"""A client generated from the public OpenAPI contract must work against our server: every
response of a full operator + node session is checked against the contract's schema for the
operation and status we answered (success and error bodies alike)."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from tests.conftest import wait_until
from tests.integration import contract
from tests.integration.mesh_helpers import endpoint_body, heartbeat_body, wait_anchored

from plexsphere import crypto

CONTRACT = contract.load()

pytestmark = pytest.mark.skipif(
    CONTRACT is None and not os.environ.get("PLEXSPHERE_REQUIRE_E2E"),
    reason="the public contract (../shared/reference/plexsphere-openapi.yaml) is not beside the repository",
)


@pytest.fixture(scope="module")
def check():
    assert CONTRACT is not None, "the public contract must be present when PLEXSPHERE_REQUIRE_E2E=1"
    return CONTRACT.validate


def wg_public_key() -> str:
    return base64.b64encode(crypto.x25519_keypair()[1]).decode()


def test_operator_session_matches_the_contract(stack, check):
    with stack.http() as http, stack.http(token="") as anon:
        check("GetHealth", anon.get("/v1/health"))
        check("GetVersion", anon.get("/v1/version"))
        check("GetAuthWhoami", http.get("/v1/auth/whoami"))
        check("GetAuthWhoami", anon.get("/v1/auth/whoami"))  # 401 Problem

        issued = check("PostAuthTokens", http.post("/v1/auth/tokens", json={
            "identity_ref": f"user:{stack.admin_id}", "env_prefix": "dev", "ttl_seconds": 3600}))
        check("GetAuthTokens", http.get("/v1/auth/tokens"))
        check("PostAuthTokenRotate", http.post(f"/v1/auth/tokens/{issued['id']}/rotate"))
        check("DeleteAuthTokenByID", http.delete(f"/v1/auth/tokens/{issued['id']}"))
        check("DeleteAuthTokenByID", http.delete(f"/v1/auth/tokens/{issued['id']}"))  # 404

        domain = check("CreateDomain", http.post("/v1/domains", json={
            "name": "Contract", "slug": stack.unique("contract"), "mesh_cidr": stack.unique_cidr()}))
        check("CreateDomain", http.post("/v1/domains", json={"name": "x", "slug": domain["slug"],
                                                             "mesh_cidr": stack.unique_cidr()}))  # 409
        check("ListDomains", http.get("/v1/domains", params={"limit": 1}))
        check("GetDomain", http.get(f"/v1/domains/{domain['id']}"))
        check("PatchDomain", http.patch(f"/v1/domains/{domain['id']}", json={"name": "Contract 2"}))
        check("PatchDomain", http.patch(f"/v1/domains/{domain['id']}", json={"slug": "nope"}))  # 400
        check("ListIdentities", http.get(f"/v1/domains/{stack.domain_id}/identities"))
        check("GetIdentity", http.get(f"/v1/domains/{stack.domain_id}/identities/{stack.admin_id}"))

        project = check("CreateProject", http.post("/v1/projects", json={
            "domain_id": domain["id"], "name": "Edge", "slug": "edge"}))
        wait_until(lambda: http.get(f"/v1/projects/{project['id']}").status_code == 200,
                   message="project grant")
        check("GetProject", http.get(f"/v1/projects/{project['id']}"))
        check("ListProjects", http.get("/v1/projects", params={"domain_id": domain["id"]}))
        check("PatchProject", http.patch(f"/v1/projects/{project['id']}", json={"name": "Edge 2"}))

        resource = check("CreateResource", http.post(f"/v1/projects/{project['id']}/resources", json={
            "origin": "adopted", "kind": "vm", "external_ref": "rack-1"}))
        check("ListProjectResources", http.get(f"/v1/projects/{project['id']}/resources"))
        check("GetResource", http.get(f"/v1/resources/{resource['id']}"))
        check("DeleteResource", http.delete(f"/v1/resources/{resource['id']}"))
        check("GetResource", http.get(f"/v1/resources/{resource['id']}"))  # 404

        check("PostAuthzCheck", http.post("/v1/authz/check", json={
            "subject": f"user:{stack.admin_id}", "relation": "project-admin", "resource": f"project:{project['id']}"}))
        check("PostAuthzCheck", http.post("/v1/authz/check", json={
            "subject": f"user:{uuid.uuid4()}", "relation": "project-admin", "resource": f"project:{project['id']}"}))
        check("PostAuthzLookupResources", http.post("/v1/authz/lookup-resources", json={
            "subject": f"user:{stack.admin_id}", "relation": "project-view", "resource_type": "project"}))
        check("PostAuthzLookupSubjects", http.post("/v1/authz/lookup-subjects", json={
            "subject_type": "user", "relation": "project-admin", "resource": f"project:{project['id']}"}))
        viewer = f"user:{uuid.uuid4()}"
        created = http.post("/v1/authz/relation-tuples", params={"project_id": project["id"]},
                            json={"subject": viewer, "relation": "viewer", "resource": f"project:{project['id']}"})
        tuple_ = check("CreateRelationTuple", created)
        check("ListRelationTuples", http.get("/v1/authz/relation-tuples", params={"project_id": project["id"]}))
        check("PatchRelationTuple", http.patch(f"/v1/authz/relation-tuples/{tuple_['id']}", json={
            "subject": viewer, "relation": "member", "resource": f"project:{project['id']}"}))
        check("DeleteRelationTuple", http.delete(f"/v1/authz/relation-tuples/{tuple_['id']}"))
        check("DeleteRelationTuple", http.delete(f"/v1/authz/relation-tuples/{tuple_['id']}"))  # 404

        # Operator-side enrolment administration.
        token = check("IssueBootstrapToken", http.post(f"/v1/projects/{project['id']}/bootstrap-tokens", json={
            "kind": "node", "env_prefix": "dev", "ttl_seconds": 3600}))
        check("IssueBootstrapToken", http.post(f"/v1/projects/{project['id']}/bootstrap-tokens", json={
            "kind": "node", "env_prefix": "dev", "ttl_seconds": 60}))  # 400
        check("ListBootstrapTokens", http.get(f"/v1/projects/{project['id']}/bootstrap-tokens"))
        check("GetBootstrapTokenMetadata",
              http.get(f"/v1/projects/{project['id']}/bootstrap-tokens/{token['token_id']}"))

        # The Node side: register two Nodes, then every mesh operation.
        nodes = []
        for name in ("edge-router-01", "edge-router-02"):
            tok = token if name.endswith("01") else http.post(
                f"/v1/projects/{project['id']}/bootstrap-tokens",
                json={"kind": "node", "env_prefix": "dev", "ttl_seconds": 3600}).json()
            body = {"project_id": project["id"], "resource_id": name, "requested_resource_id": name,
                    "bootstrap_token": tok["token"], "nonce": uuid.uuid4().hex, "public_key": wg_public_key()}
            nodes.append(check("PostRegister", anon.post("/v1/register", json=body)))
            again = anon.post("/v1/register", json=dict(body, nonce=uuid.uuid4().hex))
            assert again.status_code == 403
            check("PostRegister", again)
        check("PostRegister", anon.post("/v1/register", json={
            "project_id": project["id"], "resource_id": "x", "bootstrap_token": "psb_dev_a_node_b",
            "nonce": "n", "public_key": "short"}))  # 400 public_key_invalid
        check("RevokeBootstrapToken",
              http.delete(f"/v1/projects/{project['id']}/bootstrap-tokens/{token['token_id']}"))  # 409 consumed

        a, b = nodes
        wait_anchored(stack, a["node_id"], b["node_id"])
        bearer_a = crypto.format_nsk_bearer("dev", uuid.UUID(a["node_id"]), base64.b64decode(a["nsk"]))
        with stack.http(token=bearer_a) as node_a:
            check("GetNodeState", node_a.get(f"/v1/nodes/{a['node_id']}/state"))
            check("PostNodeHeartbeat", node_a.post(f"/v1/nodes/{a['node_id']}/heartbeat", json=heartbeat_body()))
            check("PostNodeHeartbeat", node_a.post(f"/v1/nodes/{a['node_id']}/heartbeat",
                                                   json=heartbeat_body(binary_version=" ")))  # 400
            check("PostNodeHeartbeat", node_a.post(f"/v1/nodes/{b['node_id']}/heartbeat",
                                                   json=heartbeat_body()))  # 403 node_id_mismatch
            check("PutNodeEndpoint", node_a.put(f"/v1/nodes/{a['node_id']}/endpoint", json=endpoint_body()))
            check("PutNodeEndpoint", node_a.put(f"/v1/nodes/{a['node_id']}/endpoint",
                                                json=endpoint_body(endpoint="127.0.0.1:1")))  # 400
            check("GetNodeReachability", node_a.get(f"/v1/nodes/{a['node_id']}/reachability"))
        with stack.http(token="nsk_dev_" + "A" * 64) as forged:
            check("PostNodeHeartbeat", forged.post(f"/v1/nodes/{a['node_id']}/heartbeat",
                                                   json=heartbeat_body()))  # 401 nsk_revoked

        check("ListNodes", http.get("/v1/nodes", params={"domain_id": domain["id"]}))
        check("GetDomainMeshTopology", http.get(f"/v1/domains/{domain['id']}/mesh/topology"))
        check("GetDomainMeshTopology", http.get(f"/v1/domains/{uuid.uuid4()}/mesh/topology"))  # 403/404

        check("GetNodeKeysRotatePreview", http.get(f"/v1/nodes/{a['node_id']}/keys/rotate/preview"))
        check("PostNodeKeysRotate", http.post(f"/v1/nodes/{a['node_id']}/keys/rotate"))
        new_key = wg_public_key()
        with stack.http(token=bearer_a) as node_a:
            check("PostKeysRotate", node_a.post("/v1/keys/rotate", json={"new_public_key": new_key}))
            check("PostKeysRotate", node_a.post("/v1/keys/rotate", json={"new_public_key": new_key}))  # replay
            check("PostKeysRotate", node_a.post("/v1/keys/rotate", json={"new_public_key": wg_public_key()}))  # 409
            check("PostKeysRotate", node_a.post("/v1/keys/rotate", json={"new_public_key": "x", "extra": 1}))  # 400
        check("PostNodeKeysRotate", http.post(f"/v1/nodes/{uuid.uuid4()}/keys/rotate"))  # 403/404

        check("DeleteProject", http.delete(f"/v1/projects/{project['id']}"))  # 409 project_not_empty
        check("DeleteDomain", http.delete(f"/v1/domains/{domain['id']}"))  # 409 domain_not_empty
