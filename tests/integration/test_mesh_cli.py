"""Tutorial Step 5 through plexctl, on the seeded Acme Corp Domain, plus `plexctl node`."""

from __future__ import annotations

import json
import subprocess
import threading

import yaml
from tests.conftest import VENV_BIN, wait_until
from tests.integration.enrolment_helpers import register_body
from tests.integration.mesh_helpers import enrol, make_domain, make_project, wait_anchored

from plexsphere.cli.render import table


def _register(stack, project_id: str, name: str) -> dict:
    token = json.loads(stack.plexctl("bootstrap-token", "issue", "--project", project_id, "--kind", "node",
                                     "--env-prefix", "dev", "--ttl", "1h", "--output", "json").stdout)["token"]
    with stack.http(token="") as anon:
        resp = anon.post("/v1/register", json=register_body(project_id, token, name))
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_tutorial_step_5_peer_list_and_mesh_topology(stack):
    project_id = stack.create_project("edge-fleet")["id"]
    a = _register(stack, project_id, "edge-router-01")
    b = _register(stack, project_id, "edge-router-02")
    assert (a["mesh_ip"], b["mesh_ip"]) == ("10.50.0.1", "10.50.0.2")
    wait_anchored(stack, a["node_id"], b["node_id"])
    domain = str(stack.domain_id)

    peers = stack.plexctl("peer", "list", "--domain", domain).stdout
    assert peers == table(
        [{"n": a["node_id"], "ip": "10.50.0.1", "r": "healthy"}, {"n": b["node_id"], "ip": "10.50.0.2", "r": "healthy"}],
        [("NODE_ID", lambda r: r["n"]), ("MESH_IP", lambda r: r["ip"]), ("REACHABILITY", lambda r: r["r"])],
    ) + "\n"
    lines = peers.splitlines()
    assert lines[0].split() == ["NODE_ID", "MESH_IP", "REACHABILITY"]
    assert lines[1].split() == [a["node_id"], "10.50.0.1", "healthy"]

    topo = stack.plexctl("mesh", "topology", "--domain", domain).stdout.splitlines()
    assert topo[0].split() == ["FROM", "TO", "MESH_IP", "FALLBACK", "REACH_FROM", "REACH_TO"]
    # FALLBACK is empty for direct edges, so each row has five visible cells.
    assert [line.split() for line in topo[1:]] == [
        [a["node_id"], b["node_id"], "10.50.0.2", "healthy", "healthy"],
        [b["node_id"], a["node_id"], "10.50.0.1", "healthy", "healthy"],
    ]
    fallback_col = topo[0].index("FALLBACK")
    assert all(line[fallback_col:fallback_col + 8].strip() == "" for line in topo[1:])

    # The slug works as well as the id, and -o json/yaml print the API objects.
    assert stack.plexctl("peer", "list", "--domain", "acme-corp").stdout == peers
    as_json = json.loads(stack.plexctl("mesh", "topology", "--domain", domain, "-o", "json").stdout)
    assert as_json["domain_id"] == domain and len(as_json["edges"]) == 2
    assert set(as_json["edges"][0]) == {"source_node_id", "target_node_id", "mode", "relay_node_id", "status"}
    as_yaml = yaml.safe_load(stack.plexctl("peer", "list", "--domain", domain, "-o", "yaml").stdout)
    assert [p["id"] for p in as_yaml["items"]] == [a["node_id"], b["node_id"]]
    summary = stack.plexctl("mesh", "topology", "--domain", domain, "--summary").stdout
    assert "edges: 2" in summary and "direct=2" in summary


def test_node_list_get_delete(stack):
    project_id = stack.create_project()["id"]
    node = _register(stack, project_id, stack.unique("edge"))
    wait_anchored(stack, node["node_id"])
    listed = json.loads(stack.plexctl("node", "list", "--project", project_id, "-o", "json").stdout)
    assert [n["id"] for n in listed["items"]] == [node["node_id"]]
    table_out = stack.plexctl("node", "list", "--project", project_id).stdout
    assert node["node_id"] in table_out and node["mesh_ip"] in table_out
    got = yaml.safe_load(stack.plexctl("node", "get", node["node_id"], "-o", "yaml").stdout)
    assert got["id"] == node["node_id"] and got["reachability"] == "healthy" and got["project_id"] == project_id
    assert "mesh_ip: " + node["mesh_ip"] in stack.plexctl("node", "get", node["node_id"]).stdout

    assert stack.plexctl("node", "delete", node["node_id"]).stdout.strip() == f"node {node['node_id']} deleted"
    missing = stack.plexctl("node", "get", node["node_id"], check=False)
    assert missing.returncode == 1 and "node_not_found" in missing.stderr


def test_mesh_topology_watch_redraws_when_a_node_joins(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    first, second = enrol(stack, project_id), enrol(stack, project_id)
    proc = subprocess.Popen([str(VENV_BIN / "plexctl"), "mesh", "topology", "--domain", str(domain_id), "--watch",
                             "--interval", "0.2"], env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def tables() -> list[list[str]]:
        """The drawn tables: each starts at a header line; only non-empty lines."""
        drawn: list[list[str]] = []
        for line in list(lines):
            if line.startswith("FROM"):
                drawn.append([])
            elif drawn and line.strip():
                drawn[-1].append(line)
        return drawn

    try:
        wait_until(lambda: tables() and len(tables()[0]) == 2, message="the first table (two edges)")
        third = enrol(stack, project_id)
        wait_until(lambda: len(tables()) >= 2 and len(tables()[-1]) == 6, timeout=15,
                   message="the redrawn table (six edges)")
        assert len(tables()) == 2  # nothing changed between polls before the join: no redraw
        redrawn = "".join(tables()[-1])
        assert all(n.node_id in redrawn for n in (first, second, third))
    finally:
        proc.terminate()
        proc.wait(10)
