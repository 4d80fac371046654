"""Unattended renewal: a Domain's max key age makes the worker trigger rotations by itself, once per
Node even with two server processes sweeping, and only in Domains that turned it on."""

from __future__ import annotations

import json

from test_rotation_support import add_node, complete, events_of, new_mesh, wg_public_key
from tests.conftest import wait_until


def pending_by_key_age(stack, node):
    return stack.sql("SELECT id::text FROM plexsphere.key_rotations WHERE node_id = %s AND status = 'pending' "
                     "AND requested_by = 'system:key-age'", node.node_id)


def test_key_age_triggers_one_rotation_per_stale_node_across_workers(stack):
    stack.start_extra_server()  # a second process sweeping the same database
    renewing, untouched = new_mesh(stack), new_mesh(stack)
    a, b = add_node(stack, renewing), add_node(stack, renewing)
    off = add_node(stack, untouched)
    stack.sql("UPDATE plexsphere.domains SET max_key_age_s = 1 WHERE id = %s", renewing.domain_id)

    for node in (a, b):
        wait_until(lambda node=node: pending_by_key_age(stack, node), timeout=20,
                   message="the key-age sweep to trigger a rotation")
    for node in (a, b):
        sent = [e for e in events_of(stack, renewing.domain_id, "rotate_keys")
                if e["payload"]["node_id"] == str(node.node_id)]
        assert len(sent) == 1 and sent[0]["target"] == node.node_id
        assert sent[0]["payload"]["rotation_id"] == pending_by_key_age(stack, node)[0][0]
    # Sweeps have run since the Domain turned renewal on; the other Domain's Node was left alone.
    assert stack.sql_value("SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", off.node_id) == 0

    # Completing resets the key's age; once it is old again, renewal starts the next rotation.
    first = pending_by_key_age(stack, a)[0][0]
    assert complete(stack, a, wg_public_key()).status_code == 200
    wait_until(lambda: pending_by_key_age(stack, a) and pending_by_key_age(stack, a)[0][0] != first, timeout=20,
               message="the next unattended rotation")
    assert stack.sql_value("SELECT count(*) FROM plexsphere.key_rotations WHERE node_id = %s", a.node_id) == 2


def test_the_renewal_interval_is_set_and_shown_with_plexctl(stack):
    mesh = new_mesh(stack)
    stack.plexctl("domain", "update", str(mesh.domain_id), "--max-key-age", "720h")
    assert stack.sql_value("SELECT max_key_age_s FROM plexsphere.domains WHERE id = %s", mesh.domain_id) == 2592000
    shown = json.loads(stack.plexctl("domain", "get", str(mesh.domain_id), "-o", "json").stdout)
    assert shown["max_key_age"] == "720h0m0s"
    stack.plexctl("domain", "update", str(mesh.domain_id), "--max-key-age", "0s")
    assert stack.sql_value("SELECT max_key_age_s FROM plexsphere.domains WHERE id = %s", mesh.domain_id) is None
    assert "max_key_age" not in json.loads(stack.plexctl("domain", "get", str(mesh.domain_id), "-o", "json").stdout)
