"""The signed node event stream: delivery, signatures, Last-Event-ID replay, errors, and fan-out
across two server processes on one database."""

from __future__ import annotations

import base64
import json

import pytest
from tests.conftest import wait_until
from tests.integration.mesh_helpers import SseReader, enrol, make_domain, make_project, node_http

from plexsphere.services.signing import verify_envelope


@pytest.fixture
def domain(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    return domain_id, make_project(stack, domain_id)


def _open(url_base: str, node, last_event_id: str | None = None, token: str | None = None) -> SseReader:
    headers = {"Authorization": f"Bearer {token or node.bearer}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return SseReader(f"{url_base}/v1/nodes/{node.node_id}/events", headers)


def test_peer_added_reaches_other_nodes_signed_and_verifiable(stack, domain):
    _, project_id = domain
    a = enrol(stack, project_id)
    stream = _open(stack.url, a)
    try:
        assert stream.status == 200
        assert stream.response_headers["content-type"].startswith("text/event-stream")
        assert stream.response_headers["cache-control"] == "no-cache"
        assert stream.response_headers["x-plexsphere-api-version"] == "v1"
        b = enrol(stack, project_id)
        wait_until(lambda: stream.of_type("peer_added"), message="peer_added on A's stream")
        frame = stream.of_type("peer_added")[0]
        envelope = json.loads(frame.data)
        assert frame.id == str(stack.sql_value("SELECT seq FROM plexsphere.events WHERE event_id = %s",
                                               envelope["id"]))
        assert envelope["type"] == "peer_added"
        assert envelope["scope"] == f"domain:{domain[0]}"
        assert envelope["payload"] == {"node_id": b.node_id, "mesh_ip": b.mesh_ip, "public_key": b.public_key}
        assert envelope["key_id"] == a.response["signing_key_id"]
        public_key = base64.b64decode(a.response["signing_public_key"])
        assert verify_envelope(public_key, envelope)
        tampered = {**envelope, "payload": {**envelope["payload"], "mesh_ip": "10.0.0.66"}}
        assert not verify_envelope(public_key, tampered)
        assert not verify_envelope(public_key, {**envelope, "type": "peer_removed"})
    finally:
        stream.close()


def test_last_event_id_replays_exactly_the_missed_events_in_order(stack, domain):
    _, project_id = domain
    a = enrol(stack, project_id)
    b = enrol(stack, project_id)
    first = _open(stack.url, a)
    try:
        c = enrol(stack, project_id)
        wait_until(lambda: first.of_type("peer_added"))
        last_seen = first.frames[-1].id
    finally:
        first.close()
    # While A is away: two joins, an endpoint change of B, A's own... nothing, and a removal.
    d = enrol(stack, project_id)
    e = enrol(stack, project_id)
    with node_http(stack, b) as http:
        from tests.integration.mesh_helpers import endpoint_body

        assert http.put(f"/v1/nodes/{b.node_id}/endpoint", json=endpoint_body("198.51.100.5:51820")).status_code == 200
    with node_http(stack, a) as http:  # A's own endpoint change is not sent to A
        assert http.put(f"/v1/nodes/{a.node_id}/endpoint", json=endpoint_body("198.51.100.6:51820")).status_code == 200
    with stack.http() as admin:
        assert admin.delete(f"/v1/nodes/{c.node_id}").status_code == 204
    expected = [
        ("peer_added", d.node_id), ("peer_added", e.node_id), ("peer_endpoint_changed", b.node_id),
        ("peer_removed", c.node_id),
    ]
    resumed = _open(stack.url, a, last_event_id=last_seen)
    try:
        wait_until(lambda: len(resumed.frames) >= len(expected), message="the replay")
        got = [(f.event, json.loads(f.data)["payload"]["node_id"]) for f in resumed.frames]
        assert got == expected
        ids = [int(f.id) for f in resumed.frames]
        assert ids == sorted(ids) and ids[0] > int(last_seen)
        # Live events follow the replay on the same stream.
        f = enrol(stack, project_id)
        wait_until(lambda: len(resumed.frames) == len(expected) + 1)
        assert json.loads(resumed.frames[-1].data)["payload"]["node_id"] == f.node_id
    finally:
        resumed.close()


def test_without_last_event_id_the_stream_tails_from_now(stack, domain):
    _, project_id = domain
    a = enrol(stack, project_id)
    enrol(stack, project_id)  # an event before the stream opens
    stream = _open(stack.url, a)
    late = _open(stack.url, a, last_event_id="")  # empty means "from now" too
    try:
        c = enrol(stack, project_id)
        wait_until(lambda: stream.frames and late.frames)
        assert [json.loads(f.data)["payload"]["node_id"] for f in stream.frames] == [c.node_id]
        assert [json.loads(f.data)["payload"]["node_id"] for f in late.frames] == [c.node_id]
    finally:
        stream.close()
        late.close()


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "0x10"])
def test_bad_last_event_id_is_400_before_the_stream_opens(stack, domain, value):
    a = enrol(stack, domain[1])
    with node_http(stack, a) as http:
        resp = http.get(f"/v1/nodes/{a.node_id}/events", headers={"Last-Event-ID": value})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "invalid_last_event_id"


def test_events_auth(stack, domain):
    a = enrol(stack, domain[1])
    b = enrol(stack, domain[1])
    from tests.integration.enrolment_helpers import make_user

    with stack.http(token="") as anon:
        assert anon.get(f"/v1/nodes/{a.node_id}/events").status_code == 401
    with node_http(stack, b) as http:
        resp = http.get(f"/v1/nodes/{a.node_id}/events")
        assert resp.status_code == 403 and resp.json()["code"] == "node_id_mismatch"
    with stack.http(token=make_user(stack)) as http:
        assert http.get(f"/v1/nodes/{a.node_id}/events").status_code == 403
    with stack.http() as admin:
        missing = admin.get("/v1/nodes/01900000-0000-7000-8000-000000000000/events")
        assert missing.status_code == 404 and missing.json()["code"] == "node_not_found"
    operator_stream = _open(stack.url, a, token=stack.admin_token)  # operators with node-agent may watch
    try:
        assert operator_stream.status == 200
    finally:
        operator_stream.close()


def test_a_deleted_nodes_stream_ends_and_its_nsk_stops_working(stack, domain):
    a = enrol(stack, domain[1])
    stream = _open(stack.url, a)
    try:
        with stack.http() as admin:
            assert admin.delete(f"/v1/nodes/{a.node_id}").status_code == 204
        wait_until(lambda: stream.finished, message="the stream to end")
        assert [f.event for f in stream.frames] == ["peer_removed"]
    finally:
        stream.close()
    with node_http(stack, a) as http:
        resp = http.post(f"/v1/nodes/{a.node_id}/heartbeat", json={})
        assert resp.status_code == 401 and resp.json()["code"] == "nsk_revoked"
        assert http.get(f"/v1/nodes/{a.node_id}/events").status_code == 401


def test_a_stream_on_one_process_sees_a_registration_sent_to_another(stack, domain):
    _, project_id = domain
    a = enrol(stack, project_id)
    other = stack.start_extra_server()
    stream = _open(other.url, a)
    try:
        assert stream.status == 200
        # Register through the main process; the stream is held by `other`.
        b = enrol(stack, project_id)
        wait_until(lambda: stream.of_type("peer_added"), message="peer_added across processes")
        assert json.loads(stream.of_type("peer_added")[0].data)["payload"]["node_id"] == b.node_id
    finally:
        stream.close()
