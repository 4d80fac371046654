"""plexctl domain/project/resource/authz against a real server, including the tutorial's commands."""

from __future__ import annotations

import json

import yaml
from tests.integration.tenancy_support import make_operator


def test_tutorial_domain_lookup_and_project_create(stack):
    # `plexctl domain get acme-corp` — a slug works where an id does.
    by_slug = json.loads(stack.plexctl("domain", "get", "acme-corp", "-o", "json").stdout)
    assert by_slug["id"] == str(stack.domain_id)
    by_id = json.loads(stack.plexctl("domain", "get", str(stack.domain_id), "--output", "json").stdout)
    assert by_id == by_slug
    table = stack.plexctl("domain", "list").stdout
    assert table.splitlines()[0].split() == ["ID", "SLUG", "NAME", "MESH_CIDR", "REGION"]
    assert "acme-corp" in table and "10.50.0.0/24" in table

    # The tutorial's Step 1, verbatim flags; `-o json` prints exactly the Project object.
    slug = stack.unique("edge-fleet")
    out = stack.plexctl("project", "create", "--domain", str(stack.domain_id), "--slug", slug,
                        "--display-name", "Edge Fleet", "--output", "json").stdout
    project = json.loads(out)
    assert project["slug"] == slug and project["name"] == "Edge Fleet"
    assert set(project) == {"id", "domain_id", "name", "slug", "description", "sub_range_cidr", "created_at",
                            "updated_at"}
    from tests.conftest import wait_until
    wait_until(lambda: stack.plexctl("project", "get", project["id"], check=False).returncode == 0)
    listed = yaml.safe_load(stack.plexctl("project", "list", "--domain", str(stack.domain_id), "-o", "yaml").stdout)
    assert project["id"] in [p["id"] for p in listed["items"]]

    res = json.loads(stack.plexctl("resource", "create", "--project", project["id"], "--kind", "vm",
                                   "--external-ref", "edge-router-01", "-o", "json").stdout)
    assert res["handle"] == "edge-router-01"
    assert "edge-router-01" in stack.plexctl("resource", "list", "--project", project["id"]).stdout
    wait_until(lambda: stack.plexctl("resource", "get", res["id"], check=False).returncode == 0)
    stack.plexctl("resource", "delete", res["id"])
    stack.plexctl("project", "delete", project["id"])


def test_domain_create_update_delete(stack):
    slug = stack.unique("cli")
    created = json.loads(stack.plexctl("domain", "create", "--slug", slug, "--name", "CLI Domain", "--mesh-cidr",
                                       stack.unique_cidr(), "-o", "json").stdout)
    assert created["slug"] == slug
    updated = json.loads(stack.plexctl("domain", "update", slug, "--description", "hello", "-o", "json").stdout)
    assert updated["description"] == "hello"
    assert "deleted domain" in stack.plexctl("domain", "delete", slug).stdout
    missing = stack.plexctl("domain", "get", slug, check=False)
    assert missing.returncode == 1


def test_errors_print_problem_and_denials_print_permission_denied(stack):
    dup = stack.plexctl("domain", "create", "--slug", "acme-corp", "--mesh-cidr", stack.unique_cidr(), check=False)
    assert dup.returncode == 1
    assert "domain_slug_conflict" in dup.stderr
    blocked = stack.plexctl("domain", "delete", "acme-corp", check=False)
    assert blocked.returncode == 1 and "domain_not_empty" in blocked.stderr and "identities=" in blocked.stderr

    outsider = make_operator(stack)
    env = dict(stack.env, PLEXSPHERE_TOKEN=outsider.token)
    denied = stack.plexctl("domain", "get", str(stack.domain_id), check=False, env=env)
    assert denied.returncode == 1
    assert "Permission Denied" in denied.stderr and "out_of_scope" in denied.stderr


def test_authz_grant_check_list_revoke(stack):
    project = stack.create_project()
    member = make_operator(stack)
    before = stack.plexctl("authz", "check", "--subject", member.subject, "--relation", "project-view",
                           "--resource", f"project:{project['id']}", check=False)
    assert before.returncode == 2 and "denied" in before.stdout
    granted = json.loads(stack.plexctl("authz", "grant", "--project", project["id"], "--subject", member.subject,
                                       "--relation", "viewer", "--resource", f"project:{project['id']}",
                                       "-o", "json").stdout)
    after = stack.plexctl("authz", "check", "--subject", member.subject, "--relation", "project-view",
                          "--resource", f"project:{project['id']}")
    assert "allowed" in after.stdout
    assert granted["id"] in stack.plexctl("authz", "list", "--project", project["id"]).stdout
    stack.plexctl("authz", "revoke", granted["id"])
    again = stack.plexctl("authz", "revoke", granted["id"], check=False)
    assert again.returncode == 1 and "relation_tuple_not_found" in again.stderr
