"""The authorization schema's pure evaluation, lookups support and tuple validation."""

from __future__ import annotations

import uuid

from plexsphere.domain import authz
from plexsphere.services.authz import visible_sql

P, D = "0190a000-0000-7000-8000-00000000000p".replace("p", "1"), "0190a000-0000-7000-8000-000000000002"
CHAIN = [("project", P), ("domain", D), ("platform", authz.PLATFORM_ID)]


def test_direct_relation_grants_with_path():
    decision = authz.evaluate("project-view", CHAIN, {("project", P): {"viewer"}})
    assert decision.allowed and decision.relation_path == (f"project:{P}#viewer",)


def test_inherited_through_parents_with_path():
    decision = authz.evaluate("project-admin", CHAIN, {("domain", D): {"admin"}})
    assert decision.allowed
    assert decision.relation_path == (f"project:{P}#parent", f"domain:{D}#admin")
    platform = authz.evaluate("project-admin", CHAIN, {("platform", authz.PLATFORM_ID): {"admin"}})
    assert platform.allowed and len(platform.relation_path) == 3


def test_denials_distinguish_out_of_scope_from_insufficient():
    assert authz.evaluate("project-admin", CHAIN, {}).reason == "out_of_scope"
    viewer = authz.evaluate("project-admin", CHAIN, {("project", P): {"viewer"}})
    assert not viewer.allowed and viewer.reason == "insufficient_relation"
    # A domain viewer does not become a project admin, and a domain member cannot administer.
    assert not authz.evaluate("project-admin", CHAIN, {("domain", D): {"member"}}).allowed
    assert authz.evaluate("project-edit", CHAIN, {("domain", D): {"member"}}).allowed


def test_missing_parent_stops_inheritance():
    # Before the mirror writes project#parent, the chain is the project alone.
    assert not authz.evaluate("project-view", [("project", P)], {}).allowed


def test_aliases_and_relations():
    assert authz.canonical_permission("domain", "manage") == "domain-admin"
    assert authz.canonical_permission("project", "deploy") == "project-edit"
    assert authz.canonical_permission("resource", "observe") == "resource-view"
    assert authz.canonical_permission("project", "viewer") == "relation:viewer"
    assert authz.canonical_permission("project", "parent") is None
    assert authz.canonical_permission("galaxy", "read") is None


def test_granting_relations_per_depth():
    levels = authz.granting_relations("project-admin", ["project", "domain", "platform"])
    assert levels == {0: frozenset({"admin"}), 1: frozenset({"admin"}), 2: frozenset({"admin"})}
    assert authz.granting_relations("relation:viewer", ["project"]) == {0: frozenset({"viewer"})}


def test_every_permission_has_a_parent_chain_that_exists():
    for object_type, rules in authz.SCHEMA.items():
        for rule in rules.values():
            if rule.parent_permission:
                assert rule.parent_permission in authz.SCHEMA[authz.PARENT_TYPE[object_type]]
            assert rule.relations <= set(authz.RELATIONS[object_type])


def test_parse_tuple():
    uid = uuid.uuid4()
    spec = authz.parse_tuple({"subject": f"user:{str(uid).upper()}", "relation": "viewer", "resource": f"project:{P}"})
    assert isinstance(spec, authz.TupleSpec) and spec.subject == f"user:{uid}"  # canonical lowercase
    for bad in (
        {"subject": f"user:{uid}", "relation": "parent", "resource": f"project:{P}"},
        {"subject": f"user:{uid}", "relation": "agent", "resource": f"project:{P}"},
        {"subject": "group:ops", "relation": "viewer", "resource": f"project:{P}"},
        {"subject": f"user:{uid}", "relation": "admin", "resource": "platform:plexsphere"},
        {"subject": f"user:{uid}", "relation": "viewer", "resource": f"project:{P}", "caveat_name": "from_cidr"},
        {"subject": f"user:{uid}", "relation": "viewer"},
    ):
        assert isinstance(authz.parse_tuple(bad), str), bad


def test_visible_sql_inlines_only_schema_names_and_uses_parameters():
    sql = visible_sql("project", "read", "p.id::text", "$1", "$2")
    assert "$1" in sql and "$2" in sql
    assert "'viewer'" in sql and "'platform'" in sql and "'plexsphere'" in sql
    assert visible_sql("project", "nonsense", "p.id::text", "$1", "$2") == "false"
