"""`plexctl key`: the tutorial's tables, the API objects for -o json|yaml, and errors."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import yaml
from test_rotation_support import add_node, complete, new_mesh, peer_id_of, wg_public_key

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def mesh(stack):
    return new_mesh(stack)


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_dry_run_prints_the_tutorial_table_and_records_nothing(stack, mesh):
    node = add_node(stack, mesh)
    add_node(stack, mesh)
    out = stack.plexctl("key", "rotate", "--node", str(node.node_id), "--dry-run").stdout.splitlines()
    assert len(out) == 2
    assert out[0].split() == ["NODE_ID", "PEER_ID", "AFFECTED_PEERS", "ALREADY_PENDING", "ETA_SECONDS"]
    assert columns(out[1]) == [str(node.node_id), peer_id_of(stack, node), "1", "false", "0"]
    # Columns line up under their headers, three spaces apart like the tutorial.
    assert out[1].index(peer_id_of(stack, node)) == out[0].index("PEER_ID")
    assert stack.sql_value("SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", node.node_id) == 0


def test_rotate_prints_the_tutorial_table_then_reports_already_pending(stack, mesh):
    node = add_node(stack, mesh)
    first = stack.plexctl("key", "rotate", "--node", str(node.node_id)).stdout.splitlines()
    assert first[0].split() == ["NODE_ID", "PEER_ID", "ROTATION_ID", "ALREADY_PENDING"]
    node_id, peer_id, rotation_id, pending = columns(first[1])
    assert (node_id, peer_id, pending) == (str(node.node_id), peer_id_of(stack, node), "false")
    assert re.fullmatch(UUID, rotation_id)
    again = stack.plexctl("key", "rotate", "--node", str(node.node_id)).stdout.splitlines()
    assert columns(again[1]) == [str(node.node_id), peer_id, rotation_id, "true"]


def test_json_and_yaml_print_the_api_objects(stack, mesh):
    node = add_node(stack, mesh)
    with stack.http() as http:
        api_preview = http.get(f"/v1/nodes/{node.node_id}/keys/rotate/preview").json()
    as_json = json.loads(stack.plexctl("key", "rotate", "--node", str(node.node_id), "--dry-run", "-o", "json").stdout)
    as_yaml = yaml.safe_load(stack.plexctl("key", "rotate", "--node", str(node.node_id), "--preview",
                                           "--output", "yaml").stdout)
    assert as_json == api_preview == as_yaml
    triggered = json.loads(stack.plexctl("key", "rotate", "--node", str(node.node_id), "-o", "json").stdout)
    assert set(triggered) == {"rotation_id", "peer_id", "already_pending"}
    assert triggered["already_pending"] is False


def test_rotations_lists_the_history(stack, mesh):
    node = add_node(stack, mesh)
    stack.plexctl("key", "rotate", "--node", str(node.node_id))
    assert complete(stack, node, wg_public_key()).status_code == 200
    stack.plexctl("key", "rotate", "--node", str(node.node_id))
    out = stack.plexctl("key", "rotations", "--node", str(node.node_id)).stdout.splitlines()
    assert out[0].split() == ["ROTATION_ID", "STATUS", "REQUESTED_BY", "REQUESTED_AT", "COMPLETED_AT", "KID",
                              "WRAP_KEY_VERSION"]
    assert [columns(line)[1] for line in out[1:]] == ["pending", "completed"]
    assert columns(out[2])[-2:] == ["psk-software-v1", "1"]
    listed = json.loads(stack.plexctl("key", "rotations", "--node", str(node.node_id), "-o", "json").stdout)
    assert [i["status"] for i in listed["items"]] == ["pending", "completed"]


def test_errors_print_the_problem_and_exit_1(stack):
    result = stack.plexctl("key", "rotate", "--node", str(uuid.uuid4()), check=False)
    assert result.returncode == 1
    assert "code: node_not_found" in result.stderr
    assert result.stdout == ""
