"""ReBAC operations (PostAuthzCheck, PostAuthzLookupResources, PostAuthzLookupSubjects,
ListRelationTuples, CreateRelationTuple, PatchRelationTuple, DeleteRelationTuple)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plexsphere.client.base import ApiClient


def check(c: ApiClient, subject: str, relation: str, resource: str) -> dict[str, Any]:
    return c.post("/v1/authz/check", json={"subject": subject, "relation": relation, "resource": resource})


def lookup_resources(c: ApiClient, subject: str, relation: str, resource_type: str) -> dict[str, Any]:
    return c.post("/v1/authz/lookup-resources",
                  json={"subject": subject, "relation": relation, "resource_type": resource_type})


def lookup_subjects(c: ApiClient, subject_type: str, relation: str, resource: str) -> dict[str, Any]:
    return c.post("/v1/authz/lookup-subjects",
                  json={"subject_type": subject_type, "relation": relation, "resource": resource})


def list_tuples(c: ApiClient, project_id: str) -> Iterator[dict[str, Any]]:
    return c.paginate("/v1/authz/relation-tuples", {"project_id": project_id})


def create_tuple(c: ApiClient, project_id: str, subject: str, relation: str, resource: str) -> dict[str, Any]:
    return c.post("/v1/authz/relation-tuples", params={"project_id": project_id},
                  json={"subject": subject, "relation": relation, "resource": resource})


def replace_tuple(c: ApiClient, tuple_id: str, subject: str, relation: str, resource: str) -> dict[str, Any]:
    return c.patch(f"/v1/authz/relation-tuples/{tuple_id}",
                   json={"subject": subject, "relation": relation, "resource": resource})


def delete_tuple(c: ApiClient, tuple_id: str) -> None:
    c.delete(f"/v1/authz/relation-tuples/{tuple_id}")
