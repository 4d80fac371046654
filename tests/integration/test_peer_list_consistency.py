"""The cached peer lists (services/peer_list.py) against a cache-free computation from the tables:
random joins, deletions, rotations, endpoint reports (NAT type changes included) and sweeper
expiries through the real API of two server processes on one database. After every step each
server's register snapshot and state bodies must carry exactly the reference bytes."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid

import asyncpg
import httpx
import orjson
from tests.conftest import wait_until
from tests.integration.enrolment_helpers import issue, make_domain, make_project, register_body
from tests.integration.mesh_helpers import Enrolled, endpoint_body, enrol, enrol_relay, wait_anchored

from plexsphere import crypto
from plexsphere.services.peer_list import reference_json
from plexsphere.services.relays import domain_relays

NAT_TYPES = ["full_cone", "restricted", "port_restricted", "symmetric", "unknown"]
ENDPOINTS = ["198.51.100.1:51820", "198.51.100.2:51820", "198.51.100.3:4000"]


def reference(stack, domain_id, exclude: str, *, with_fallback: bool) -> bytes:
    async def go() -> bytes:
        conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": "plexsphere"})
        try:
            relays = await domain_relays(conn, domain_id)
            viewer_kind = await conn.fetchval("SELECT kind FROM nodes WHERE id = $1", uuid.UUID(exclude))
            relay = relays[0].endpoint if with_fallback and relays and viewer_kind != "bridge" else None
            return await reference_json(conn, domain_id, exclude=uuid.UUID(exclude), relay_endpoint=relay)
        finally:
            await conn.close()

    return asyncio.run(go())


def join(stack, url: str, project_id) -> tuple[Enrolled, bytes]:
    """Registers through the server at `url`; returns the Node and the raw response body."""
    with stack.http() as admin:
        token = issue(admin, project_id)["token"]
    body = register_body(project_id, token)
    with httpx.Client(base_url=url, timeout=30) as http:
        resp = http.post("/v1/register", json=body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    bearer = crypto.format_nsk_bearer("dev", uuid.UUID(data["node_id"]), base64.b64decode(data["nsk"]))
    return Enrolled(data["node_id"], data["mesh_ip"], data["nsk"], bearer, data, body["public_key"]), resp.content


def state(url: str, node: Enrolled) -> bytes:
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {node.bearer}"}) as http:
        resp = http.get(f"/v1/nodes/{node.node_id}/state")
    assert resp.status_code == 200, resp.text
    return resp.content


def assert_state_matches(stack, urls, domain_id, nodes, rng, step) -> None:
    for url in urls:
        for node in rng.sample(nodes, min(3, len(nodes))):
            body = state(url, node)
            expected = reference(stack, domain_id, node.node_id, with_fallback=True)
            assert b'"peers":' + expected + b',"reachability"' in body, f"step {step}: {node.node_id} at {url}: {body[:700]!r} vs {expected!r}"


def report(url: str, node: Enrolled, endpoint: str, nat_type: str) -> None:
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {node.bearer}"}) as http:
        resp = http.put(f"/v1/nodes/{node.node_id}/endpoint", json=endpoint_body(endpoint, nat_type))
    assert resp.status_code == 200, resp.text


def test_random_histories_serve_what_the_tables_say_on_two_servers(stack):
    second = stack.start_extra_server()
    urls = [stack.url, second.url]
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    rng = random.Random(20261126)
    bridge = enrol_relay(stack, project_id, "203.0.113.10:51820")  # every other Peer's fallback
    nodes: list[Enrolled] = [bridge]
    ops = {"join": 0, "delete": 0, "rotate": 0, "report": 0, "renat": 0, "expire": 0}
    for step in range(45):
        live = [n for n in nodes if n is not bridge]
        op = rng.choices(list(ops), weights=[4, 1, 2, 4, 2, 2])[0] if len(live) >= 3 else "join"
        url = rng.choice(urls)
        if op == "join":
            node, raw = join(stack, url, project_id)
            expected = reference(stack, domain_id, node.node_id, with_fallback=False)
            assert b'"peer_snapshot":' + expected + b',' in raw, f"step {step}: register snapshot at {url}"
            wait_anchored(stack, node.node_id)
            nodes.append(node)
        elif op == "delete":
            victim = rng.choice(live)
            with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {stack.admin_token}"}) as h:
                assert h.delete(f"/v1/nodes/{victim.node_id}").status_code == 204
            nodes.remove(victim)
        elif op == "rotate":
            node = rng.choice(live)
            with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {stack.admin_token}"}) as h:
                assert h.post(f"/v1/nodes/{node.node_id}/keys/rotate").status_code in (200, 201, 202)
            new_key = base64.b64encode(crypto.x25519_keypair()[1]).decode()
            with httpx.Client(base_url=rng.choice(urls), timeout=30,
                              headers={"Authorization": f"Bearer {node.bearer}"}) as h:
                resp = h.post("/v1/keys/rotate", json={"new_public_key": new_key})
            assert resp.status_code == 200, resp.text
        elif op == "report":
            report(url, rng.choice(live), rng.choice(ENDPOINTS), rng.choice(NAT_TYPES))
        else:
            reported = [n for n in live if stack.sql_value(
                "SELECT endpoint IS NOT NULL AND NOT endpoint_stale FROM plexsphere.peers WHERE node_id = %s",
                n.node_id)]
            if not reported:
                continue
            if op == "renat":  # the same endpoint, only the NAT type flips (in or out of symmetric)
                node = rng.choice(reported)
                endpoint, nat_type = stack.sql("SELECT endpoint, nat_type FROM plexsphere.peers WHERE node_id = %s",
                                               node.node_id)[0]
                report(url, node, endpoint, "full_cone" if nat_type == "symmetric" else "symmetric")
                ops[op] += 1
                assert_state_matches(stack, urls, domain_id, nodes, rng, step)
                continue
            node = rng.choice(reported)
            stack.sql("UPDATE plexsphere.peers SET endpoint_stale_after = now() - interval '1 second' "
                      "WHERE node_id = %s", node.node_id)
            wait_until(lambda node=node: stack.sql_value(
                "SELECT endpoint_stale FROM plexsphere.peers WHERE node_id = %s", node.node_id),
                message="the sweeper's tombstone")
        ops[op] += 1
        assert_state_matches(stack, urls, domain_id, nodes, rng, step)
    assert all(ops.values()), ops  # every kind of change was exercised
    symmetric = stack.sql_value("SELECT count(*) FROM plexsphere.peers WHERE domain_id = %s AND nat_type = 'symmetric'",
                                domain_id)
    assert symmetric, "no symmetric-NAT peer: the fallback path went untested"
    # A full body is byte-identical across the two servers for the same ledger.
    node = nodes[-1]
    assert state(urls[0], node) == state(urls[1], node)


def test_out_of_band_changes_behind_an_unknown_event_or_a_long_gap_are_picked_up(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    a, b = enrol(stack, project_id), enrol(stack, project_id)
    state(stack.url, a)  # the Domain's peer list is now cached

    # An event type the peer list does not know, committed with a change it cannot see: rebuild.
    stack.sql("""WITH changed AS (UPDATE plexsphere.peers SET endpoint = '198.51.100.77:1'
                                   WHERE node_id = %s RETURNING domain_id)
                 INSERT INTO plexsphere.events (domain_id, event_id, type, envelope)
                 SELECT domain_id, gen_random_uuid(), 'peer_renamed', '{}' FROM changed""", b.node_id)
    peers = orjson.loads(state(stack.url, a))["peers"]
    assert peers == [{**peers[0], "endpoint": "198.51.100.77:1"}] and peers[0]["node_id"] == b.node_id

    # More newer events than are worth folding in (all unrelated), hiding another change: rebuild.
    stack.sql("""WITH changed AS (UPDATE plexsphere.peers SET endpoint = '198.51.100.78:1'
                                   WHERE node_id = %s RETURNING domain_id)
                 INSERT INTO plexsphere.events (domain_id, event_id, type, envelope)
                 SELECT domain_id, gen_random_uuid(), 'rotate_keys', '{"payload": {}}'
                   FROM changed, generate_series(1, 600)""", b.node_id)
    assert orjson.loads(state(stack.url, a))["peers"][0]["endpoint"] == "198.51.100.78:1"
    assert state(stack.url, a) == state(stack.url, a)


def test_a_rotation_does_not_announce_a_tombstoned_endpoint(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    a, b = enrol(stack, project_id), enrol(stack, project_id)
    report(stack.url, b, "198.51.100.9:51820", "symmetric")
    stack.sql("UPDATE plexsphere.peers SET endpoint_stale_after = now() - interval '1 second' WHERE node_id = %s",
              b.node_id)
    wait_until(lambda: stack.sql_value("SELECT endpoint_stale FROM plexsphere.peers WHERE node_id = %s", b.node_id),
               message="the sweeper's tombstone")
    with stack.http() as admin:
        assert admin.post(f"/v1/nodes/{b.node_id}/keys/rotate").status_code in (200, 201, 202)
    new_key = base64.b64encode(crypto.x25519_keypair()[1]).decode()
    with stack.http(token=b.bearer) as http:
        assert http.post("/v1/keys/rotate", json={"new_public_key": new_key}).status_code == 200
    envelope = stack.sql_value("SELECT envelope FROM plexsphere.events WHERE domain_id = %s "
                               "AND type = 'peer_key_rotated' ORDER BY seq DESC LIMIT 1", domain_id)
    assert orjson.loads(envelope)["payload"] == {"node_id": b.node_id, "mesh_ip": b.mesh_ip, "public_key": new_key}
    peers = orjson.loads(state(stack.url, a))["peers"]
    # The NAT type stays (it is not part of the tombstoned endpoint).
    assert peers == [{"node_id": b.node_id, "mesh_ip": b.mesh_ip, "public_key": new_key, "nat_type": "symmetric"}]


def test_concurrent_registrations_and_pulls_on_two_servers_stay_within_the_ledger(stack):
    """Registrations race each other, the worker's anchoring and state pulls on two processes. Each
    answer must hold every Peer anchored before it was asked for and none anchored after it came back,
    each object exactly as the tables have it; once quiet, both servers serve the reference bytes."""
    second = stack.start_extra_server()
    urls = [stack.url, second.url]
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    puller = enrol(stack, project_id)
    with stack.http() as admin:
        tokens = [issue(admin, project_id)["token"] for _ in range(24)]

    async def go():
        pool = await asyncpg.create_pool(stack.database_url, min_size=4, max_size=8,
                                         server_settings={"search_path": "plexsphere"})
        clients = [httpx.AsyncClient(base_url=u, timeout=60) for u in urls]

        async def anchored() -> set[str]:
            return {r[0] for r in await pool.fetch("SELECT node_id::text FROM peers WHERE domain_id = $1", domain_id)}

        async def register(i: int):
            before = await anchored()
            resp = await clients[i % 2].post("/v1/register", json=register_body(project_id, tokens[i]))
            after = await anchored()
            assert resp.status_code == 200, resp.text
            return before, resp.json(), after

        async def pull(i: int):
            before = await anchored()
            resp = await clients[i % 2].get(f"/v1/nodes/{puller.node_id}/state",
                                            headers={"Authorization": f"Bearer {puller.bearer}"})
            after = await anchored()
            assert resp.status_code == 200, resp.text
            return before - {puller.node_id}, resp.json(), after

        try:
            return await asyncio.gather(*[register(i) for i in range(24)], *[pull(i) for i in range(12)])
        finally:
            for c in clients:
                await c.aclose()
            await pool.close()

    results = asyncio.run(go())
    objects = {}
    for before, body, after in results:
        listed = body["peer_snapshot"] if "peer_snapshot" in body else body["peers"]
        ids = [p["node_id"] for p in listed]
        assert ids == sorted(ids) and body.get("node_id") not in ids
        assert before <= set(ids) <= after, "an answer outside the ledger at the time it was asked"
        for p in listed:
            assert objects.setdefault(p["node_id"], p) == p  # no rotations or endpoints here: one object each
    nodes = stack.sql("SELECT id::text FROM plexsphere.nodes WHERE domain_id = %s", domain_id)
    wait_anchored(stack, *[n[0] for n in nodes])
    expected = reference(stack, domain_id, puller.node_id, with_fallback=True)
    for url in urls:
        assert b'"peers":' + expected + b',"reachability"' in state(url, puller)
