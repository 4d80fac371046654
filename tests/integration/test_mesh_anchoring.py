"""Anchoring: a registered Node becomes a Peer of its Domain (tutorial Step 5), quickly, once."""

from __future__ import annotations

import time

from tests.conftest import wait_until
from tests.integration.mesh_helpers import enrol, make_domain, make_project, wait_anchored


def test_two_registered_nodes_are_anchored_healthy_with_two_direct_edges(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    a = enrol(stack, project_id)
    b = enrol(stack, project_id)
    assert (a.mesh_ip, b.mesh_ip) == (a.mesh_ip.rsplit(".", 1)[0] + ".1", a.mesh_ip.rsplit(".", 1)[0] + ".2")
    with stack.http() as http:
        resp = http.get(f"/v1/domains/{domain_id}/mesh/topology")
    assert resp.status_code == 200, resp.text
    topology = resp.json()
    assert topology["domain_id"] == str(domain_id)
    assert sorted((n["node_id"], n["mesh_ip"], n["reachability"]) for n in topology["nodes"]) == sorted(
        [(a.node_id, a.mesh_ip, "healthy"), (b.node_id, b.mesh_ip, "healthy")])
    assert sorted((e["source_node_id"], e["target_node_id"]) for e in topology["edges"]) == sorted(
        [(a.node_id, b.node_id), (b.node_id, a.node_id)])
    for edge in topology["edges"]:
        assert edge["mode"] == "direct" and edge["relay_node_id"] is None and edge["status"] == "healthy"


def test_anchoring_follows_the_register_commit_within_a_fraction_of_a_second(stack):
    project_id = make_project(stack)
    started = time.monotonic()
    node = enrol(stack, project_id, wait=False)
    wait_anchored(stack, node.node_id, timeout=5)
    elapsed = time.monotonic() - started
    # Woken by NOTIFY at the register commit, not by a poll: register + anchoring well under a second.
    assert elapsed < 1.0, f"register → anchored took {elapsed:.3f}s"


def test_anchoring_writes_peer_psk_tuples_and_one_event_and_is_idempotent(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    node = enrol(stack, project_id)
    peer_id = stack.sql_value("SELECT id FROM plexsphere.peers WHERE node_id = %s", node.node_id)
    assert stack.sql("SELECT kid, epoch, retired_at FROM plexsphere.node_psks WHERE node_id = %s", node.node_id) == [
        ("psk-software-v1", 1, None)]
    resource_id = stack.sql_value("SELECT resource_id FROM plexsphere.nodes WHERE id = %s", node.node_id)
    tuples = set(stack.sql("SELECT object_type, object_id, relation, subject_type, subject_id "
                           "FROM plexsphere.relation_tuples WHERE object_id IN (%s, %s)", node.node_id,
                           str(resource_id)))
    assert ("node", node.node_id, "parent", "project", str(project_id)) in tuples
    assert ("resource", str(resource_id), "parent", "project", str(project_id)) in tuples
    assert stack.sql("SELECT type, exclude_node_id::text FROM plexsphere.events WHERE domain_id = %s",
                     domain_id) == [("peer_added", node.node_id)]
    # A replayed outbox row (at-least-once delivery) changes nothing.
    stack.sql("INSERT INTO plexsphere.outbox (topic, payload) VALUES ('node.registered', %s::jsonb)",
              f'{{"node_id": "{node.node_id}", "domain_id": "{domain_id}", "project_id": "{project_id}"}}')
    wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.outbox WHERE topic = 'node.registered'") == 0)
    assert stack.sql_value("SELECT id FROM plexsphere.peers WHERE node_id = %s", node.node_id) == peer_id
    assert stack.sql_value("SELECT count(*) FROM plexsphere.node_psks WHERE node_id = %s", node.node_id) == 1
    assert stack.sql_value("SELECT count(*) FROM plexsphere.events WHERE domain_id = %s", domain_id) == 1
