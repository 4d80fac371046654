"""Issue 12 server side: bridge enrolment, the bridge relay routes (contract codes, nothing changes on
a refusal), what Nodes and bridges receive in their state (fallback_endpoint, relays, the bridge's
assignments), topology `relayed` edges, and endpoint reports that must be refused."""

from __future__ import annotations

import pytest
from tests.conftest import wait_until
from tests.integration.enrolment_helpers import issue, make_domain, make_project, register_body
from tests.integration.mesh_helpers import endpoint_body, enrol, enrol_relay, heartbeat_body, node_http
from tests.integration.tenancy_support import make_operator


def relay_path(project_id, resource_id) -> str:
    return f"/v1/projects/{project_id}/resources/{resource_id}/bridge/relay"


def resource_of(stack, node) -> str:
    return str(stack.sql_value("SELECT resource_id FROM plexsphere.nodes WHERE id = %s", node.node_id))


def state(stack, node) -> dict:
    with node_http(stack, node) as http:
        resp = http.get(f"/v1/nodes/{node.node_id}/state")
    assert resp.status_code == 200, resp.text
    return resp.json()


def report(stack, node, endpoint: str, nat_type: str) -> None:
    with node_http(stack, node) as http:
        resp = http.put(f"/v1/nodes/{node.node_id}/endpoint", json=endpoint_body(endpoint, nat_type))
    assert resp.status_code == 200, resp.text


@pytest.fixture
def project(stack):
    return make_project(stack, make_domain(stack, stack.unique_cidr()))


def test_bridge_tokens_enrol_only_at_the_bridge_seam_and_only_as_bridges(stack, project):
    with stack.http() as admin, stack.http(token="") as anon:
        bridge_token = issue(admin, project, kind="bridge")["token"]
        assert anon.post("/v1/register", json=register_body(project, bridge_token)).json()["code"] == "kind_mismatch"
        node_token = issue(admin, project, kind="node")["token"]
        resp = anon.post("/v1/bridges/register", json=register_body(project, node_token))
        assert (resp.status_code, resp.json()["code"]) == (403, "kind_mismatch")
        # An existing Resource that is not a bridge: refused, and the token stays unconsumed.
        vm = admin.post(f"/v1/projects/{project}/resources", json={"origin": "adopted", "kind": "vm",
                                                                    "external_ref": "vm-1"}).json()
        resp = anon.post("/v1/bridges/register", json=register_body(project, bridge_token, "vm-1", adopt=False))
        assert (resp.status_code, resp.json()["code"]) == (409, "resource_not_bridge")
        assert stack.sql_value("SELECT consumed_at FROM plexsphere.bootstrap_tokens WHERE project_id = %s "
                               "AND kind = 'bridge'", project) is None
        resp = anon.post("/v1/bridges/register", json=register_body(project, bridge_token, "edge-bridge"))
        assert resp.status_code == 200, resp.text
    node_id = resp.json()["node_id"]
    assert stack.sql("SELECT n.kind, r.kind FROM plexsphere.nodes n JOIN plexsphere.resources r "
                     "ON r.id = n.resource_id WHERE n.id = %s", node_id) == [("bridge", "bridge")]
    with stack.http() as admin:
        nodes = admin.get("/v1/nodes", params={"project_id": str(project)}).json()["items"]
    assert [n["kind"] for n in nodes if n["id"] == node_id] == ["bridge"]
    assert vm["kind"] == "vm"


def test_relay_configuration_routes_and_their_refusals(stack, project):
    bridge = enrol(stack, project, kind="bridge")
    resource = resource_of(stack, bridge)
    path = relay_path(project, resource)
    viewer = make_operator(stack, grants=[("project", str(project), "viewer")])
    with stack.http() as admin:
        vm = admin.post(f"/v1/projects/{project}/resources", json={"origin": "adopted", "kind": "vm"}).json()
        assert admin.get(path).json()["code"] == "resource_not_found"  # nothing configured yet
        refusals = [
            (admin.put(relay_path(project, vm["id"]), json={"enabled": True, "listen_port": 3478}),
             409, "resource_not_bridge"),
            (admin.put(path, json={"enabled": True, "listen_port": 0}), 400, "relay_port_out_of_range"),
            (admin.put(path, json={"enabled": True, "listen_port": 65536}), 400, "relay_port_out_of_range"),
            (admin.put(path, json={"enabled": "yes", "listen_port": 3478}), 400, "invalid_body"),
            (admin.put(path, json={"enabled": True}), 400, "invalid_body"),
            (admin.put(path, content=b"{"), 400, "invalid_body"),
            (admin.put(relay_path(project, "0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0d2"),
                       json={"enabled": True, "listen_port": 3478}), 403, None),  # unknown: 403 before 404
            (admin.put(relay_path(make_project(stack), resource), json={"enabled": True, "listen_port": 3478}),
             404, "resource_not_found"),  # the Resource is not in that Project
            (admin.put(relay_path(project, "nope"), json={"enabled": True, "listen_port": 3478}),
             400, "invalid_resource_id"),
        ]
    with stack.http(token=viewer.token) as http:
        refusals.append((http.put(path, json={"enabled": True, "listen_port": 3478}), 403, None))
        refusals.append((http.delete(path), 403, None))
    for resp, status, code in refusals:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        if code:
            assert resp.json()["code"] == code
    assert stack.sql_value("SELECT count(*) FROM plexsphere.bridge_relays WHERE resource_id = %s", resource) == 0

    with stack.http() as admin:
        first = admin.put(path, json={"enabled": True, "listen_port": 3478})
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["resource_id"], body["enabled"], body["listen_port"]) == (resource, True, 3478)
        again = admin.put(path, json={"enabled": True, "listen_port": 3478}).json()
        assert again == body  # identical: a no-op, updated_at unchanged
        with stack.http(token=viewer.token) as http:
            assert http.get(path).json() == body  # viewers observe
        moved = admin.put(path, json={"enabled": False, "listen_port": 3479}).json()
        assert (moved["enabled"], moved["listen_port"], moved["created_at"]) == (False, 3479, body["created_at"])
        assert admin.delete(path).status_code == 204
        assert admin.delete(path).status_code == 204  # idempotent
        assert admin.get(path).status_code == 404
        assert admin.delete(relay_path(project, vm["id"])).json()["code"] == "resource_not_bridge"
    # configure, reconfigure, delete: one event each for the Domain; the no-op none.
    assert stack.sql_value("SELECT count(*) FROM plexsphere.events WHERE type = 'bridge_config_updated' "
                           "AND envelope::jsonb #>> '{payload,node_id}' = %s", bridge.node_id) == 3


def test_nodes_get_fallbacks_and_the_bridge_gets_its_assignments(stack, project):
    a, b = enrol(stack, project), enrol(stack, project)
    report(stack, a, "198.51.100.1:40000", "symmetric")
    report(stack, b, "198.51.100.2:51820", "port_restricted")
    assert all("fallback_endpoint" not in p for p in state(stack, a)["peers"])  # no relay yet
    bridge = enrol_relay(stack, project, "203.0.113.10:51820", 3478)
    view = state(stack, a)
    assert view["relays"] == [{"node_id": bridge.node_id, "endpoint": "203.0.113.10:3478"}]
    by_id = {p["node_id"]: p for p in view["peers"]}
    assert by_id[b.node_id]["fallback_endpoint"] == "203.0.113.10:3478"
    assert by_id[b.node_id]["nat_type"] == "port_restricted"
    assert by_id[bridge.node_id]["kind"] == "bridge" and "fallback_endpoint" not in by_id[bridge.node_id]
    assert view["bridge"] is None

    bridge_view = state(stack, bridge)
    assert all("fallback_endpoint" not in p for p in bridge_view["peers"])
    relay = bridge_view["bridge"]["relay"]
    assert (relay["enabled"], relay["listen_port"]) == (True, 3478)
    assert relay["assignments"] == [
        {"peer_node_id": n, "fallback_endpoint": "203.0.113.10", "fallback_endpoint_port": 3478}
        for n in sorted([a.node_id, b.node_id])]
    assert bridge_view["bridge"]["user_access"] is None

    # Disabled: the bridge keeps its configuration, nobody is told to dial it.
    with stack.http() as admin:
        admin.put(relay_path(project, resource_of(stack, bridge)), json={"enabled": False, "listen_port": 3478})
    assert state(stack, bridge)["bridge"]["relay"] == {"enabled": False, "listen_port": 3478, "assignments": []}
    assert state(stack, a)["relays"] == []
    assert all("fallback_endpoint" not in p for p in state(stack, a)["peers"])


def test_topology_predicts_then_follows_what_nodes_report(stack, project):
    domain_id = stack.sql_value("SELECT domain_id FROM plexsphere.projects WHERE id = %s", project)
    a, b = enrol(stack, project), enrol(stack, project)
    report(stack, a, "198.51.100.1:40000", "symmetric")
    report(stack, b, "198.51.100.2:51820", "port_restricted")
    bridge = enrol_relay(stack, project)

    def edge(src, dst) -> dict:
        with stack.http() as admin:
            doc = admin.get(f"/v1/domains/{domain_id}/mesh/topology").json()
        return next(e for e in doc["edges"] if (e["source_node_id"], e["target_node_id"]) == (src, dst))

    assert (edge(a.node_id, b.node_id)["mode"], edge(a.node_id, b.node_id)["relay_node_id"]) == \
        ("relayed", bridge.node_id)
    assert edge(a.node_id, bridge.node_id)["relay_node_id"] is None  # a bridge is reached directly
    with node_http(stack, a) as http:  # a reports: everything direct (it punched through after all)
        assert http.post(f"/v1/nodes/{a.node_id}/heartbeat",
                         json=heartbeat_body(nat_summary={"relayed_peers": {}})).status_code == 200
    assert edge(a.node_id, b.node_id) == {"source_node_id": a.node_id, "target_node_id": b.node_id,
                                          "mode": "direct", "relay_node_id": None, "status": "healthy"}
    assert edge(b.node_id, a.node_id)["mode"] == "relayed"  # b has not reported: still predicted
    with node_http(stack, b) as http:
        assert http.post(f"/v1/nodes/{b.node_id}/heartbeat", json=heartbeat_body(
            nat_summary={"relayed_peers": {a.node_id: bridge.node_id}})).status_code == 200
    assert edge(b.node_id, a.node_id)["relay_node_id"] == bridge.node_id
    out = stack.plexctl("mesh", "topology", "--domain", str(domain_id)).stdout
    line = next(row for row in out.splitlines() if row.split()[:2] == [b.node_id, a.node_id])
    assert bridge.node_id in line  # the FALLBACK column
    with stack.http() as admin:
        summary = admin.get(f"/v1/domains/{domain_id}/mesh/topology", params={"summary": "true"}).json()
    assert summary["edges_by_mode"] == {"direct": 5, "relayed": 1}


@pytest.mark.parametrize("endpoint", [
    "127.0.0.1:51820", "[::1]:51820", "169.254.10.1:51820", "[fe80::1]:51820", "224.0.0.5:51820",
    "[ff02::1]:51820", "0.0.0.0:51820", "[::]:51820", "node.example:51820", "198.51.100.1:0",
    "198.51.100.1:65536", "198.51.100.1", "255.255.255.255:51820",
])
def test_endpoint_reports_that_are_refused(stack, project, endpoint):
    node = enrol(stack, project)
    with node_http(stack, node) as http:
        resp = http.put(f"/v1/nodes/{node.node_id}/endpoint", json=endpoint_body(endpoint, "port_restricted"))
    assert (resp.status_code, resp.json()["code"]) == (400, "endpoint_unparseable")
    assert stack.sql_value("SELECT endpoint FROM plexsphere.peers WHERE node_id = %s", node.node_id) is None


def test_private_endpoints_stay_valid_and_nobody_sets_another_nodes_endpoint(stack, project):
    a, b = enrol(stack, project), enrol(stack, project)
    report(stack, a, "10.1.2.3:51820", "unknown")  # a LAN mesh reports private addresses
    report(stack, a, "[fd00::3]:51820", "unknown")
    with node_http(stack, a) as http:
        resp = http.put(f"/v1/nodes/{b.node_id}/endpoint", json=endpoint_body("198.51.100.66:1", "full_cone"))
        assert (resp.status_code, resp.json()["code"]) == (403, "node_id_mismatch")
        resp = http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.66:1", "none"))
        assert (resp.status_code, resp.json()["code"]) == (400, "malformed_endpoint_request")
    assert stack.sql_value("SELECT endpoint FROM plexsphere.peers WHERE node_id = %s", b.node_id) is None
    wait_until(lambda: stack.sql_value("SELECT endpoint FROM plexsphere.peers WHERE node_id = %s", a.node_id)
               == "[fd00::3]:51820")


def test_plexctl_bridge_relay_and_node_endpoints(stack, project):
    import json

    import yaml

    bridge = enrol(stack, project, kind="bridge")
    report(stack, bridge, "203.0.113.20:51820", "full_cone")
    resource = resource_of(stack, bridge)
    missing = stack.plexctl("bridge", "relay", "get", "--resource", resource, check=False)
    assert missing.returncode != 0 and "resource_not_found" in missing.stdout + missing.stderr
    table = stack.plexctl("bridge", "relay", "set", "--resource", resource, "--listen-port", "5249").stdout
    assert "listen_port" in table and "5249" in table
    got = json.loads(stack.plexctl("bridge", "relay", "get", "--resource", resource, "-o", "json").stdout)
    assert (got["resource_id"], got["enabled"], got["listen_port"]) == (resource, True, 5249)
    off = yaml.safe_load(stack.plexctl("bridge", "relay", "disable", "--resource", resource, "--project",
                                       str(project), "-o", "yaml").stdout)
    assert (off["enabled"], off["listen_port"]) == (False, 5249)
    listed = stack.plexctl("node", "list", "--project", str(project)).stdout
    assert "203.0.113.20:51820" in listed and "full_cone" in listed and "NAT" in listed
    domain = str(stack.sql_value("SELECT domain_id FROM plexsphere.projects WHERE id = %s", project))
    wide = stack.plexctl("peer", "list", "--domain", domain, "--wide").stdout
    assert wide.splitlines()[0].split() == ["NODE_ID", "MESH_IP", "REACHABILITY", "ENDPOINT", "NAT"]
    assert "203.0.113.20:51820" in wide and "full_cone" in wide
    rows = json.loads(stack.plexctl("node", "list", "--project", str(project), "-o", "json").stdout)["items"]
    assert [(r["endpoint"], r["nat_type"]) for r in rows] == [("203.0.113.20:51820", "full_cone")]


def test_the_control_plane_answers_stun_and_advertises_its_port(stack, project):
    import socket

    from tests.conftest import free_port

    from plexsphere import stun

    port = free_port()
    server = stack.start_extra_server(extra_env={"PLEXSPHERE_STUN_PORT": str(port)})
    node = enrol(stack, project)
    with httpx_client(server.url, node) as http:
        assert http.get(f"/v1/nodes/{node.node_id}/state").json()["stun_port"] == port
    assert state(stack, node)["stun_port"] is None  # the default server runs none

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sock.sendto(b"\x00\x01junk that is no STUN message", ("127.0.0.1", port))
        txid = stun.transaction_id()
        sock.sendto(stun.binding_request(txid), ("127.0.0.1", port))
        answer, source = sock.recvfrom(2048)  # the junk got no answer: this is the request's
        assert source == ("127.0.0.1", port)
        assert stun.mapped_address(answer, txid) == sock.getsockname()
        txid = stun.transaction_id()
        sock.sendto(stun.binding_request(txid, change_port=True), ("127.0.0.1", port))
        answer, source = sock.recvfrom(2048)
        assert source == ("127.0.0.1", port + 1)  # answered from the other port
        assert stun.mapped_address(answer, txid) == sock.getsockname()


def httpx_client(url: str, node):
    import httpx

    return httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {node.bearer}"})
