"""What a rotation means for the mesh: the Node learns of it on both channels (heartbeat and its
event stream), its peers learn the new key, every edge PSK changes and both ends still agree, and
no secret (NSK, per-node or edge PSK) shows up in the log, the event log or the database."""

from __future__ import annotations

import base64
import binascii
import json
import time

import httpx
import pytest
from test_rotation_support import add_node, complete, keyring_of, new_mesh, run, wg_public_key

from plexsphere import crypto
from plexsphere.timeutil import rfc3339, utcnow


@pytest.fixture(scope="module")
def mesh(stack):
    return new_mesh(stack)


def heartbeat(stack, node) -> dict:
    body = {"client_now": rfc3339(utcnow()), "binary_checksum": "ab" * 32, "binary_version": "plexd-test",
            "nat_summary": {}}
    with stack.http(token=node.bearer) as http:
        resp = http.post(f"/v1/nodes/{node.node_id}/heartbeat", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def fetch_psk(stack, node, peer) -> tuple[bytes, str, int]:
    with stack.http(token=node.bearer) as http:
        resp = http.get(f"/v1/nodes/{node.node_id}/peers/{peer.node_id}/psk")
    assert resp.status_code == 200, resp.text
    return (crypto.open_from_server(node.nsk, resp.content), resp.headers["X-Plexsphere-PSK-KID"],
            int(resp.headers["X-Plexsphere-PSK-Epoch"]))


def stream_events(stack, node, until_type: str, until_rotation: str | None = None, timeout: float = 15.0):
    """Frames of the Node's stream replayed from the start, up to the first `until_type` event (whose
    payload names `until_rotation`, when given)."""
    seen = []
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {node.bearer}", "Last-Event-ID": "0"}
    with httpx.Client(base_url=stack.url, timeout=timeout) as http, \
            http.stream("GET", f"/v1/nodes/{node.node_id}/events", headers=headers) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if time.monotonic() > deadline:
                pytest.fail(f"no {until_type} on the stream; saw {[e['type'] for e in seen]}")
            if not line.startswith("data: "):
                continue
            envelope = json.loads(line[len("data: "):])
            seen.append(envelope)
            payload = envelope["payload"]
            if envelope["type"] == until_type and until_rotation in (None, payload.get("rotation_id")):
                return seen
    pytest.fail("stream ended")


def test_the_node_learns_of_a_pending_rotation_on_both_channels(stack, mesh):
    node, other = add_node(stack, mesh), add_node(stack, mesh)
    assert heartbeat(stack, node)["rotate_keys"] is False
    with stack.http() as http:
        rotation_id = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"]
    assert heartbeat(stack, node)["rotate_keys"] is True
    assert heartbeat(stack, node)["rotate_keys"] is True  # for as long as it is pending
    assert heartbeat(stack, other)["rotate_keys"] is False

    new_key = wg_public_key()
    assert complete(stack, node, new_key).status_code == 200
    assert heartbeat(stack, node)["rotate_keys"] is False

    # The other peer's stream carries the new key; the rotating Node's stream carries its command
    # and not the fan-out about itself (checked up to a later command, so absence is proven).
    with stack.http() as http:
        later = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"]
    own = stream_events(stack, node, "rotate_keys", until_rotation=later)
    own_types = [(e["type"], e["payload"].get("rotation_id")) for e in own]
    assert ("rotate_keys", rotation_id) in own_types
    assert not any(e["type"] == "peer_key_rotated" and e["payload"]["node_id"] == str(node.node_id) for e in own)
    theirs = stream_events(stack, other, "peer_key_rotated")
    rotated = [e for e in theirs if e["type"] == "peer_key_rotated"]
    assert rotated[-1]["payload"]["node_id"] == str(node.node_id)
    assert rotated[-1]["payload"]["public_key"] == new_key
    assert not any(e["type"] == "rotate_keys" for e in theirs)


def test_every_edge_psk_changes_and_both_ends_agree(stack, mesh):
    node, b, c = add_node(stack, mesh), add_node(stack, mesh), add_node(stack, mesh)
    before = {}
    for peer in (b, c):
        mine, kid, epoch = fetch_psk(stack, node, peer)
        theirs, _, their_epoch = fetch_psk(stack, peer, node)
        assert mine == theirs and len(mine) == 32 and epoch == their_epoch
        before[peer.node_id] = (mine, epoch)
    with stack.http() as http:
        http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
    assert complete(stack, node, wg_public_key()).status_code == 200
    for peer in (b, c):
        mine, kid, epoch = fetch_psk(stack, node, peer)
        theirs, _, their_epoch = fetch_psk(stack, peer, node)
        assert mine == theirs and epoch == their_epoch
        assert mine != before[peer.node_id][0]
        assert epoch == before[peer.node_id][1] + 1
        assert kid == "psk-software-v1"
    # The edge between the two peers that did not rotate is untouched.
    assert fetch_psk(stack, b, c)[0] == fetch_psk(stack, c, b)[0]


def _forms(secret: bytes) -> set[str]:
    return {base64.b64encode(secret).decode(), base64.b64encode(secret).decode().rstrip("="),
            crypto.b64url(secret), binascii.hexlify(secret).decode()}


def test_no_secret_appears_in_logs_events_or_the_database(stack, mesh):
    node, peer = add_node(stack, mesh), add_node(stack, mesh)
    with stack.http() as http:
        http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
    resp = complete(stack, node, wg_public_key())
    assert resp.status_code == 200
    edge, _, _ = fetch_psk(stack, peer, node)
    keyring = keyring_of(stack)

    async def node_psks(conn):  # every per-node PSK ever issued to the two, unwrapped here only
        rows = await conn.fetch("SELECT node_id, epoch, psk_wrapped FROM node_psks WHERE node_id = ANY($1::uuid[])",
                                [node.node_id, peer.node_id])
        return [keyring.unwrap(r["psk_wrapped"], f"psk:{r['node_id']}:{r['epoch']}".encode()) for r in rows]

    secrets = {"nsk": node.nsk, "peer nsk": peer.nsk, "edge psk": edge}
    secrets.update({f"node psk {i}": s for i, s in enumerate(run(stack, node_psks))})
    assert len(secrets) >= 6  # two NSKs, the edge, the rotated Node's old and new PSKs, the peer's

    tables = [r[0] for r in stack.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'plexsphere'")]
    dump = "\n".join(str(row[0]) for t in tables
                     for row in stack.sql(f"SELECT row_to_json(t)::text FROM plexsphere.{t} t"))
    events = "\n".join(r[0] for r in stack.sql("SELECT envelope FROM plexsphere.events"))
    log = stack.server.log_path.read_text(errors="replace")
    assert dump and events
    for name, secret in secrets.items():
        for form in _forms(secret):
            for where, text in (("database", dump), ("events", events), ("server log", log),
                                ("receipt", resp.text)):
                assert form not in text, f"{name} appears in the {where} ({form[:6]}…)"
