"""Pure Domain/Project/Resource rules: no I/O."""

from __future__ import annotations

import pytest

from plexsphere.domain import domains, projects, resources
from plexsphere.domain.errors import ProblemError


def code_of(fn, *args):
    with pytest.raises(ProblemError) as err:
        fn(*args)
    return err.value.code


@pytest.mark.parametrize("text", ["10.42.0.0/16", "fd00:1::/64", "10.0.0.0/30", "2001:db8::/127"])
def test_canonical_cidrs_are_accepted(text):
    assert str(domains.parse_cidr(text)) == text


@pytest.mark.parametrize("text", ["10.0.0.1/24", "10.0.0.0/024", "FD00:1::/64", "fd00:0001::/64", "10.0.0.0",
                                  "10.0.0.0/31", "10.0.0.0/32", "fd00::1/128", "", None, 42])
def test_non_canonical_or_hostless_cidrs_are_refused(text):
    assert code_of(domains.parse_cidr, text) == "invalid_domain"


def test_reachability_defaults_all_or_none_and_bounds():
    assert domains.parse_reachability(None) == domains.Reachability(30, 90, 300)
    zero = {"heartbeat_interval": "0s", "stale_after": "0s", "unreachable_after": "0s"}
    assert domains.parse_reachability(zero) == domains.Reachability(30, 90, 300)
    ok = domains.parse_reachability({"heartbeat_interval": "10s", "stale_after": "30s", "unreachable_after": "1h"})
    assert ok == domains.Reachability(10, 30, 3600)
    assert ok.as_wire() == {"heartbeat_interval": "10s", "stale_after": "30s", "unreachable_after": "1h0m0s"}
    for bad in (
        {"heartbeat_interval": "30s", "stale_after": "90s"},
        {"heartbeat_interval": "9s", "stale_after": "30s", "unreachable_after": "60s"},
        {"heartbeat_interval": "2h", "stale_after": "3h", "unreachable_after": "4h"},
        {"heartbeat_interval": "30s", "stale_after": "89s", "unreachable_after": "5m"},
        {"heartbeat_interval": "30s", "stale_after": "90s", "unreachable_after": "179s"},
        {"heartbeat_interval": "30.5s", "stale_after": "92s", "unreachable_after": "5m"},
        {"heartbeat_interval": "-30s", "stale_after": "90s", "unreachable_after": "5m"},
        {"heartbeat_interval": "30s", "stale_after": "90s", "unreachable_after": "5m", "jitter": "1s"},
        "30s",
    ):
        assert code_of(domains.parse_reachability, bad) == "invalid_reachability_policy", bad


def test_max_key_age():
    assert domains.parse_max_key_age(None) is None
    assert domains.parse_max_key_age("0s") is None
    assert domains.parse_max_key_age("720h") == 720 * 3600
    for bad in ("1.5s", "forever", "100000h", 5):
        assert code_of(domains.parse_max_key_age, bad) == "invalid_domain"


def test_domain_create_trims_and_defaults():
    spec = domains.parse_create({"name": "  Acme  ", "slug": "acme", "mesh_cidr": "10.1.0.0/16"})
    assert spec.name == "Acme" and spec.env == "dev" and spec.region is None and spec.description == ""
    assert code_of(domains.parse_create, {"name": "x", "slug": "a--b", "mesh_cidr": "10.1.0.0/16"}) == "invalid_domain"
    assert code_of(domains.parse_create, {"name": "x", "slug": "a" * 65, "mesh_cidr": "10.1.0.0/16"}) == \
        "invalid_domain"


def test_domain_patch_precedence():
    # slug wins over everything, even alongside unknown fields or an empty-looking patch
    assert code_of(domains.parse_patch, {"slug": "same", "bogus": 1}) == "slug_immutable"
    assert code_of(domains.parse_patch, {}) == "empty_patch"
    assert code_of(domains.parse_patch, {"env": "prod"}) == "invalid_body"
    patch = domains.parse_patch({"region": "", "description": ""})
    assert patch.changes() == {"region": None, "description": ""}


def test_stranded_sub_ranges():
    reservations = [("p1", "10.0.0.0/26"), ("p2", "10.0.0.128/26")]
    assert domains.stranded_sub_ranges("10.0.0.0/25", reservations) == [("p2", "10.0.0.128/26")]
    assert domains.stranded_sub_ranges("10.0.0.0/24", reservations) == []
    assert domains.stranded_sub_ranges("fd00::/64", reservations) == reservations


def test_child_count_detail_reads_like_the_contract_example():
    detail = domains.child_count_detail({"projects": 2, "groups": 1, "identities": 5, "idp_bindings": 0,
                                         "nodes": 3})
    assert detail == "Domain has 2 projects, 1 group, 5 identities, 0 idp_bindings, 3 nodes still attached"


def test_project_rules():
    spec = projects.parse_create({"domain_id": "0190a000-0000-7000-8000-000000000001", "name": "P", "slug": "p",
                                  "sub_range_cidr": "10.0.0.0/26"})
    assert spec.sub_range_cidr == "10.0.0.0/26"
    assert code_of(projects.parse_create, {"domain_id": "nope", "name": "P", "slug": "p"}) == "invalid_project"
    assert code_of(projects.parse_patch, {"slug": "p"}) == "slug_immutable"
    assert code_of(projects.parse_patch, {"release_sub_range": False}) == "empty_patch"
    assert code_of(projects.parse_patch, {"release_sub_range": True, "sub_range_cidr": "10.0.0.0/26"}) == \
        "sub_range_invalidates_allocation"
    assert projects.parse_patch({"release_sub_range": True}).changes() == {"sub_range_cidr": None}
    assert code_of(projects.check_sub_range, "10.1.0.0/26", "10.0.0.0/24", []) == "invalid_project"
    assert code_of(projects.check_sub_range, "10.0.0.0/26", "10.0.0.0/24", [("x", "10.0.0.32/27")]) == \
        "sub_range_overlap"
    projects.check_sub_range("10.0.0.64/26", "10.0.0.0/24", [("x", "10.0.0.0/26")])
    assert projects.addresses_outside("10.0.0.0/26", ["10.0.0.1", "10.0.0.65"]) == ["10.0.0.65"]


def test_resource_rules():
    spec = resources.parse_create({"origin": "adopted", "kind": " vm ", "external_ref": " i-123 "})
    assert (spec.kind, spec.external_ref, spec.handle) == ("vm", "i-123", None)
    assert code_of(resources.parse_create, {"origin": "ADOPTED", "kind": "vm"}) == "invalid_resource_origin"
    assert code_of(resources.parse_create, {"origin": "adopted", "kind": "vm", "parameters": {}}) == "invalid_body"
    assert code_of(resources.parse_create, {"origin": "provisioned", "kind": "vm", "external_ref": "x"}) == \
        "invalid_body"
