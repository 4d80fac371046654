"""Rotation under concurrency, against the real server: racing completions, racing triggers, and
triggers racing completions. Each scenario repeats a few rounds so an interleaving bug shows."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest
from test_rotation_support import add_node, events_of, new_mesh, wg_public_key

ROUNDS = 5


@pytest.fixture(scope="module")
def mesh(stack):
    return new_mesh(stack)


def in_parallel(calls):
    """Runs each zero-argument callable in its own thread, released together; returns their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(i, fn):
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def completion(stack, node, key):
    def call():
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            return http.post("/v1/keys/rotate", json={"new_public_key": key},
                             headers={"Authorization": f"Bearer {node.bearer}"})
    return call


def trigger(stack, node):
    def call():
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            return http.post(f"/v1/nodes/{node.node_id}/keys/rotate",
                             headers={"Authorization": f"Bearer {stack.admin_token}"})
    return call


def rotated_events(stack, mesh, node):
    return [e for e in events_of(stack, mesh.domain_id, "peer_key_rotated")
            if e["payload"]["node_id"] == str(node.node_id)]


def test_two_completions_with_different_keys_exactly_one_wins(stack, mesh):
    node = add_node(stack, mesh)
    add_node(stack, mesh)
    for round_no in range(ROUNDS):
        with stack.http() as http:
            rotation_id = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"]
        keys = [wg_public_key() for _ in range(3)]
        results = in_parallel([completion(stack, node, k) for k in keys])
        statuses = Counter(r.status_code for r in results)
        assert statuses == {200: 1, 409: 2}, [r.text for r in results]
        winner = next(k for k, r in zip(keys, results, strict=True) if r.status_code == 200)
        assert all(r.json()["code"] == "keys_rotate_no_pending_rotation" for r in results if r.status_code == 409)
        assert next(r for r in results if r.status_code == 200).json()["rotation_id"] == rotation_id
        installed = stack.sql_value("SELECT encode(public_key, 'base64') FROM plexsphere.nodes WHERE id = %s",
                                    node.node_id)
        assert installed == winner
        assert stack.sql_value("SELECT count(*) FROM plexsphere.node_psks WHERE node_id = %s AND retired_at IS NULL",
                               node.node_id) == 1
        assert len(rotated_events(stack, mesh, node)) == round_no + 1


def test_the_same_key_submitted_twice_at_once_gets_one_receipt(stack, mesh):
    node = add_node(stack, mesh)
    for round_no in range(ROUNDS):
        with stack.http() as http:
            http.post(f"/v1/nodes/{node.node_id}/keys/rotate")
        key = wg_public_key()
        results = in_parallel([completion(stack, node, key) for _ in range(3)])
        assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
        assert len({r.text for r in results}) == 1
        assert len(rotated_events(stack, mesh, node)) == round_no + 1


def test_concurrent_triggers_record_one_rotation_and_one_event(stack, mesh):
    node = add_node(stack, mesh)
    results = in_parallel([trigger(stack, node) for _ in range(8)])
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    bodies = [r.json() for r in results]
    assert len({b["rotation_id"] for b in bodies}) == 1
    assert sum(not b["already_pending"] for b in bodies) == 1
    assert stack.sql_value("SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", node.node_id) == 1
    sent = [e for e in events_of(stack, mesh.domain_id, "rotate_keys") if e["payload"]["node_id"] == str(node.node_id)]
    assert len(sent) == 1


def test_triggers_racing_a_completion_never_leave_two_pending_rows(stack, mesh):
    node = add_node(stack, mesh)
    for _ in range(ROUNDS):
        with stack.http() as http:
            first = http.post(f"/v1/nodes/{node.node_id}/keys/rotate").json()["rotation_id"]
        results = in_parallel([completion(stack, node, wg_public_key()), *(trigger(stack, node) for _ in range(4))])
        done, *triggers = results
        assert done.status_code == 200, done.text
        assert all(t.status_code == 200 for t in triggers), [t.text for t in triggers]
        pending = stack.sql("SELECT id::text FROM plexsphere.key_rotations WHERE node_id = %s AND status = 'pending'",
                            node.node_id)
        assert len(pending) <= 1
        # Each trigger saw either the rotation being completed or the single one started after it.
        allowed = {first} | {p[0] for p in pending}
        assert {t.json()["rotation_id"] for t in triggers} <= allowed
        new_rows = [t.json() for t in triggers if not t.json()["already_pending"]]
        assert len(new_rows) == len(pending)
        if pending:  # finish it so the next round starts from "nothing pending"
            assert completion(stack, node, wg_public_key())().status_code == 200
