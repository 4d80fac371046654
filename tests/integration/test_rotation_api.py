"""Rotation routes against a real server: preview, trigger, completion (every contract code, in the
contract's order), history, and the OpenAPI document."""

from __future__ import annotations

import base64
import uuid

import pytest
from test_rotation_support import (
    add_node,
    anchor,
    complete,
    events_of,
    new_mesh,
    operator_without_grants,
    peer_id_of,
    wg_public_key,
)


@pytest.fixture(scope="module")
def mesh(stack):
    return new_mesh(stack)


def count(stack, sql, *params):
    return stack.sql_value(sql, *params)


# -- preview -----------------------------------------------------------------------------------------
def test_preview_lists_one_edge_per_other_peer_and_records_nothing(stack, mesh):
    a, b, c = (add_node(stack, mesh) for _ in range(3))
    add_node(stack, mesh, anchored=False)  # registered, not a peer: no edge to it yet
    events_before = count(stack, "SELECT count(*) FROM plexsphere.events")
    with stack.http() as http:
        first = http.get(f"/v1/nodes/{a.node_id}/keys/rotate/preview")
        second = http.get(f"/v1/nodes/{a.node_id}/keys/rotate/preview")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body == second.json()
    assert body["node_id"] == str(a.node_id)
    assert body["peer_id"] == peer_id_of(stack, a)
    assert body["affected_peer_count"] == 2
    assert sorted(e["peer_node_id"] for e in body["affected_edges"]) == sorted([str(b.node_id), str(c.node_id)])
    assert all(e["current_kid"] == "psk-software-v1" and e["current_wrap_key_version"] == 1
               for e in body["affected_edges"])
    assert body["already_pending"] is False
    assert body["estimated_duration_seconds"] == 0
    assert count(stack, "SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", a.node_id) == 0
    assert count(stack, "SELECT count(*) FROM plexsphere.events") == events_before


@pytest.mark.parametrize("method,suffix", [("GET", "/keys/rotate/preview"), ("POST", "/keys/rotate"),
                                           ("GET", "/keys/rotations")])
def test_operator_routes_check_authorization_before_existence(stack, mesh, method, suffix):
    node = add_node(stack, mesh)
    stranger = operator_without_grants(stack)
    with stack.http(token="") as http:
        assert http.request(method, f"/v1/nodes/{node.node_id}{suffix}").status_code == 401
    with stack.http(token=stranger) as http:
        existing = http.request(method, f"/v1/nodes/{node.node_id}{suffix}")
        missing = http.request(method, f"/v1/nodes/{uuid.uuid4()}{suffix}")
    for resp in (existing, missing):  # same answer whether or not the Node exists: no id oracle
        assert resp.status_code == 403
        assert resp.json()["reason"] == "insufficient_relation"  # the one reason rotation.md names
        assert resp.json()["correlation_id"].startswith("rebac-")
    with stack.http() as http:
        resp = http.request(method, f"/v1/nodes/{uuid.uuid4()}{suffix}")
    assert resp.status_code == 404 and resp.json()["code"] == "node_not_found"
    assert count(stack, "SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", node.node_id) == 0


def test_a_node_that_is_not_anchored_yet_cannot_be_rotated(stack, mesh):
    node = add_node(stack, mesh, anchored=False)
    with stack.http() as http:
        preview = http.get(f"/v1/nodes/{node.node_id}/keys/rotate/preview")
        trigger = http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
    for resp in (preview, trigger):
        assert resp.status_code == 404
        assert resp.json()["code"] == "node_not_anchored"
    assert count(stack, "SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", node.node_id) == 0


# -- trigger -----------------------------------------------------------------------------------------
def test_trigger_records_one_pending_rotation_and_one_targeted_event(stack, mesh):
    node = add_node(stack, mesh)
    with stack.http() as http:
        first = http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
        again = http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
        preview = http.get(f"/v1/nodes/{node.node_id}/keys/rotate/preview").json()
    assert first.status_code == 200, first.text
    assert first.json() == {"rotation_id": first.json()["rotation_id"], "peer_id": peer_id_of(stack, node),
                            "already_pending": False}
    assert again.json() == {**first.json(), "already_pending": True}
    assert preview["already_pending"] is True
    rows = stack.sql("SELECT id::text, status, requested_by FROM plexsphere.key_rotations WHERE node_id = %s",
                     node.node_id)
    assert rows == [(first.json()["rotation_id"], "pending", f"user:{stack.admin_id}")]
    sent = [e for e in events_of(stack, mesh.domain_id, "rotate_keys") if e["payload"]["node_id"] == str(node.node_id)]
    assert len(sent) == 1
    assert sent[0]["target"] == node.node_id
    assert sent[0]["payload"]["rotation_id"] == first.json()["rotation_id"]


# -- completion --------------------------------------------------------------------------------------
def test_completion_rekeys_the_node_and_tells_every_other_peer(stack, mesh):
    node, other = add_node(stack, mesh), add_node(stack, mesh)
    old_psk = stack.sql("SELECT id FROM plexsphere.node_psks WHERE node_id = %s AND retired_at IS NULL", node.node_id)
    with stack.http() as http:
        rotation_id = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"]
    new_key = wg_public_key()
    resp = complete(stack, node, new_key)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"rotation_id": rotation_id, "kid": "psk-software-v1", "wrap_key_version": 1}

    assert base64.b64encode(bytes(stack.sql_value(
        "SELECT public_key FROM plexsphere.nodes WHERE id = %s", node.node_id))).decode() == new_key
    psks = stack.sql("SELECT id, retired_at IS NULL FROM plexsphere.node_psks WHERE node_id = %s ORDER BY epoch",
                     node.node_id)
    assert psks[0] == (old_psk[0][0], False) and psks[-1][1] is True and len(psks) == 2
    row = stack.sql("SELECT status, completed_at IS NOT NULL, kid, wrap_key_version FROM plexsphere.key_rotations "
                    "WHERE id = %s", uuid.UUID(rotation_id))
    assert row == [("completed", True, "psk-software-v1", 1)]
    rotated = [e for e in events_of(stack, mesh.domain_id, "peer_key_rotated")
               if e["payload"]["node_id"] == str(node.node_id)]
    assert len(rotated) == 1
    assert rotated[0]["payload"]["public_key"] == new_key
    assert rotated[0]["payload"]["mesh_ip"] == node.mesh_ip
    assert rotated[0]["exclude"] == node.node_id and rotated[0]["target"] is None

    # A retry of the same submission (lost response) gets the same receipt and changes nothing.
    replay = complete(stack, node, new_key)
    assert replay.status_code == 200 and replay.json() == resp.json()
    assert len([e for e in events_of(stack, mesh.domain_id, "peer_key_rotated")
                if e["payload"]["node_id"] == str(node.node_id)]) == 1
    assert count(stack, "SELECT count(*) FROM plexsphere.node_psks WHERE node_id = %s", node.node_id) == 2
    # A different key with nothing pending is not a replay.
    assert complete(stack, node, wg_public_key()).json()["code"] == "keys_rotate_no_pending_rotation"
    assert other.node_id != node.node_id


def test_a_later_rotation_gets_a_new_row_and_the_bare_nsk_also_authenticates(stack, mesh):
    node = add_node(stack, mesh)
    receipts = []
    for _ in range(2):
        with stack.http() as http:
            trig = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()
        assert trig["already_pending"] is False
        resp = complete(stack, node, wg_public_key(), bearer=node.bare_bearer)
        assert resp.status_code == 200, resp.text
        receipts.append(resp.json()["rotation_id"])
    assert receipts[0] != receipts[1]
    assert count(stack, "SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s AND status = 'completed'",
                 node.node_id) == 2


def _post_raw(stack, token, content, headers=None):
    with stack.http(token=token) as http:
        return http.post("/v1/keys/rotate", content=content,
                         headers={"Content-Type": "application/json", **(headers or {})})


@pytest.mark.parametrize("token", ["", "garbage", "nsk_dev_" + "A" * 64, base64.b64encode(bytes(32)).decode()])
def test_completion_without_a_valid_nsk_is_401_before_the_body_is_read(stack, token):
    resp = _post_raw(stack, token, b"{" * 5000)
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthorized"


def test_completion_body_errors_come_in_the_contract_order(stack, mesh):
    node = add_node(stack, mesh)  # no pending rotation: every answer below comes before that 409
    too_large = _post_raw(stack, node.bearer, b"{" * 4097)  # not JSON: proves the decoder never ran
    assert (too_large.status_code, too_large.json()["code"]) == (413, "keys_rotate_body_too_large")
    for body in (b"{not json", b"", b"[]", b'{"new_public_key": "%s", "node_id": "x"}' % wg_public_key().encode(),
                 b"{}", b'{"new_public_key": 7}'):
        resp = _post_raw(stack, node.bearer, body)
        assert (resp.status_code, resp.json()["code"]) == (400, "malformed_keys_rotate_request"), body
    for key in ("short", base64.b64encode(bytes(32)).decode(), base64.b64encode(b"\x01" * 33).decode()):
        resp = complete(stack, node, key)
        assert (resp.status_code, resp.json()["code"]) == (422, "keys_rotate_public_key_invalid"), key
    idle = complete(stack, node, wg_public_key())
    assert (idle.status_code, idle.json()["code"]) == (409, "keys_rotate_no_pending_rotation")
    with stack.http() as http:
        http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
    unchanged = complete(stack, node, node.public_key)
    assert (unchanged.status_code, unchanged.json()["code"]) == (422, "keys_rotate_public_key_unchanged")
    assert count(stack, "SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s AND status = 'pending'",
                 node.node_id) == 1


def test_a_node_without_a_live_peer_gets_404(stack, mesh):
    node = add_node(stack, mesh, anchored=False)
    resp = complete(stack, node, wg_public_key())
    assert (resp.status_code, resp.json()["code"]) == (404, "keys_rotate_peer_not_found")
    anchor(stack, node, mesh)
    resp = complete(stack, node, wg_public_key())
    assert resp.json()["code"] == "keys_rotate_no_pending_rotation"


# -- history -----------------------------------------------------------------------------------------
def test_history_lists_a_nodes_rotations_newest_first_with_cursors(stack, mesh):
    node = add_node(stack, mesh)
    ids = []
    keys = []
    for i in range(3):
        with stack.http() as http:
            ids.append(http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"])
        if i < 2:
            keys.append(wg_public_key())
            assert complete(stack, node, keys[-1]).status_code == 200
    with stack.http() as http:
        page1 = http.get(f"/v1/nodes/{node.node_id}/keys/rotations", params={"limit": 2}).json()
        page2 = http.get(f"/v1/nodes/{node.node_id}/keys/rotations",
                         params={"limit": 2, "cursor": page1["next_cursor"]}).json()
        bad = http.get(f"/v1/nodes/{node.node_id}/keys/rotations", params={"limit": 0})
    items = page1["items"] + page2["items"]
    assert [i["id"] for i in items] == ids[::-1]
    assert page2["next_cursor"] is None
    assert items[0]["status"] == "pending" and items[0]["completed_at"] is None
    assert items[1]["status"] == "completed" and items[1]["new_public_key"] == keys[1]
    assert items[1]["kid"] == "psk-software-v1" and items[1]["wrap_key_version"] == 1
    assert items[2]["requested_by"] == f"user:{stack.admin_id}"
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_limit"


def test_our_openapi_document_describes_the_rotation_routes(stack):
    with stack.http(token="") as http:
        spec = http.get("/v1/openapi.json").json()
    paths = spec["paths"]
    assert paths["/v1/nodes/{id}/keys/rotate"]["post"]["operationId"] == "PostNodeKeysRotate"
    assert paths["/v1/nodes/{id}/keys/rotate/preview"]["get"]["operationId"] == "GetNodeKeysRotatePreview"
    assert paths["/v1/keys/rotate"]["post"]["operationId"] == "PostKeysRotate"
    assert "requestBody" in paths["/v1/keys/rotate"]["post"]
    assert paths["/v1/nodes/{id}/keys/rotations"]["get"]["operationId"] == "ListNodeKeyRotations"
