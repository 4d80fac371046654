"""The reachability and endpoint sweeps run by the worker, observed through the API."""

from __future__ import annotations

import json

from tests.conftest import wait_until
from tests.integration.mesh_helpers import (
    endpoint_body,
    enrol,
    heartbeat_body,
    make_domain,
    make_project,
    node_http,
)

from plexsphere.timeutil import parse_rfc3339


def _reach(stack, node) -> dict:
    with node_http(stack, node) as http:
        return http.get(f"/v1/nodes/{node.node_id}/reachability").json()


def test_silence_degrades_to_stale_then_unreachable_and_a_heartbeat_heals(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    quiet, chatty = enrol(stack, project_id), enrol(stack, project_id)
    # Pretend the quiet Node was anchored 100 s ago and never heartbeated (thresholds 90 s / 300 s).
    stack.sql("UPDATE plexsphere.peers SET anchored_at = now() - interval '100 seconds' WHERE node_id = %s",
              quiet.node_id)
    wait_until(lambda: _reach(stack, quiet)["state"] == "stale", message="stale")
    reach = _reach(stack, quiet)
    anchored_at = stack.sql_value("SELECT anchored_at FROM plexsphere.peers WHERE node_id = %s", quiet.node_id)
    assert reach["last_heartbeat_at"] is None
    # changed_at is when the threshold was crossed (anchoring + 90 s), not when a sweep noticed.
    assert abs((parse_rfc3339(reach["changed_at"]) - anchored_at).total_seconds() - 90) < 0.01
    assert _reach(stack, chatty)["state"] == "healthy"

    with stack.http() as http:
        edges = http.get(f"/v1/domains/{domain_id}/mesh/topology").json()["edges"]
    assert {e["status"] for e in edges} == {"stale"}  # an edge is as good as its worse end

    stack.sql("UPDATE plexsphere.peers SET anchored_at = now() - interval '400 seconds' WHERE node_id = %s",
              quiet.node_id)
    wait_until(lambda: _reach(stack, quiet)["state"] == "unreachable", message="unreachable")

    with node_http(stack, quiet) as http:
        beat = http.post(f"/v1/nodes/{quiet.node_id}/heartbeat", json=heartbeat_body()).json()
    assert beat["reconcile"] is True  # it was cut off: it should re-pull its state
    assert _reach(stack, quiet)["state"] == "healthy"
    assert _reach(stack, quiet)["changed_at"] == beat["accepted_at"]


def test_domain_thresholds_are_per_domain(stack):
    strict = make_domain(stack, stack.unique_cidr())
    stack.sql("UPDATE plexsphere.domains SET heartbeat_interval_s = 1, stale_after_s = 3, unreachable_after_s = 6 "
              "WHERE id = %s", strict)
    node = enrol(stack, make_project(stack, strict))
    lenient_node = enrol(stack, make_project(stack, make_domain(stack, stack.unique_cidr())))
    wait_until(lambda: _reach(stack, node)["state"] == "stale", timeout=15, message="stale after 3 s")
    assert _reach(stack, lenient_node)["state"] == "healthy"


def test_an_endpoint_not_refreshed_is_tombstoned_once(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    a, b = enrol(stack, project_id), enrol(stack, project_id)
    with node_http(stack, a) as http:
        assert http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.9:51820")).status_code == 200
        # An identical refresh only bumps freshness: no second event.
        assert http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.9:51820")).status_code == 200
    changes = "SELECT envelope FROM plexsphere.events WHERE domain_id = %s AND type = 'peer_endpoint_changed' ORDER BY seq"
    assert len(stack.sql(changes, domain_id)) == 1
    stack.sql("UPDATE plexsphere.peers SET endpoint_stale_after = now() - interval '1 second' WHERE node_id = %s",
              a.node_id)
    wait_until(lambda: len(stack.sql(changes, domain_id)) == 2, message="the tombstone event")
    tombstone = json.loads(stack.sql(changes, domain_id)[-1][0])
    assert tombstone["payload"]["node_id"] == a.node_id and "endpoint" not in tombstone["payload"]
    with node_http(stack, b) as http:
        peer = http.get(f"/v1/nodes/{b.node_id}/state").json()["peers"][0]
    assert "endpoint" not in peer
    # Back from stale with the same endpoint: announced again.
    with node_http(stack, a) as http:
        assert http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.9:51820")).status_code == 200
    assert json.loads(stack.sql(changes, domain_id)[-1][0])["payload"]["endpoint"] == "198.51.100.9:51820"
    assert len(stack.sql(changes, domain_id)) == 3
