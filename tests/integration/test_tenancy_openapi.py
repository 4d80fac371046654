"""Every tenancy/authz route we serve is in our own /v1/openapi.json under the contract's operationId."""

from __future__ import annotations

EXPECTED = {
    ("/v1/domains", "get"): "ListDomains",
    ("/v1/domains", "post"): "CreateDomain",
    ("/v1/domains/{id}", "get"): "GetDomain",
    ("/v1/domains/{id}", "patch"): "PatchDomain",
    ("/v1/domains/{id}", "delete"): "DeleteDomain",
    ("/v1/projects", "get"): "ListProjects",
    ("/v1/projects", "post"): "CreateProject",
    ("/v1/projects/{id}", "get"): "GetProject",
    ("/v1/projects/{id}", "patch"): "PatchProject",
    ("/v1/projects/{id}", "delete"): "DeleteProject",
    ("/v1/projects/{project_id}/resources", "get"): "ListProjectResources",
    ("/v1/projects/{project_id}/resources", "post"): "CreateResource",
    ("/v1/resources/{id}", "get"): "GetResource",
    ("/v1/resources/{id}", "delete"): "DeleteResource",
    ("/v1/domains/{id}/identities", "get"): "ListIdentities",
    ("/v1/domains/{id}/identities/{principalId}", "get"): "GetIdentity",
    ("/v1/authz/check", "post"): "PostAuthzCheck",
    ("/v1/authz/lookup-resources", "post"): "PostAuthzLookupResources",
    ("/v1/authz/lookup-subjects", "post"): "PostAuthzLookupSubjects",
    ("/v1/authz/relation-tuples", "get"): "ListRelationTuples",
    ("/v1/authz/relation-tuples", "post"): "CreateRelationTuple",
    ("/v1/authz/relation-tuples/{id}", "patch"): "PatchRelationTuple",
    ("/v1/authz/relation-tuples/{id}", "delete"): "DeleteRelationTuple",
}


def test_operations_are_documented_with_contract_ids(stack):
    with stack.http(token="") as http:
        paths = http.get("/v1/openapi.json").json()["paths"]
    for (path, method), operation_id in EXPECTED.items():
        assert path in paths, path
        operation = paths[path][method]
        assert operation["operationId"] == operation_id
        if method in ("post", "patch") and "lookup" not in path and "check" not in path:
            assert "requestBody" in operation, operation_id
