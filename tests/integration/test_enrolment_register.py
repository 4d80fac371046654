"""POST /v1/register against a real server and PostgreSQL: the exchange, every denial with proof of
what did not change, adoption, allocation, and races."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import uuid

import asyncpg
import httpx
import pytest
from tests.conftest import make_stack, stop_stack, wait_until
from tests.integration.enrolment_helpers import (
    count_nodes,
    insert_nodes_sql,
    issue,
    keyring,
    make_domain,
    make_project,
    pool_state,
    public_key,
    register_body,
    token_row,
)

from plexsphere import crypto


@pytest.fixture(scope="module")
def stack(postgres, tmp_path_factory):
    # The concurrency tests send hundreds of registrations from one address: no rate limit here.
    s = make_stack(postgres, tmp_path_factory.mktemp("stack"),
                   extra_env={"PLEXSPHERE_REGISTER_RATE_PER_MINUTE": "0"})
    try:
        wait_until(lambda: s.sql_value("SELECT count(*) FROM plexsphere.outbox") == 0, message="outbox drained")
        yield s
    finally:
        stop_stack(postgres, s)


@pytest.fixture
def fleet(stack):
    """A fresh Domain (its own /24) with one Project, so allocation starts at .1."""
    domain_id = make_domain(stack, stack.unique_cidr())
    return domain_id, make_project(stack, domain_id)


def _unchanged(stack, domain_id, project_id, token_id, before_pool):
    row = token_row(stack, uuid.UUID(token_id))
    assert row == {"consumed_at": None, "revoked_at": row["revoked_at"], "consumed_nonce": None}
    assert count_nodes(stack, project_id) == 0
    assert pool_state(stack, domain_id) == before_pool


# -- the exchange ---------------------------------------------------------------------------------
def test_register_returns_the_nodes_whole_new_world(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
    body = register_body(project_id, token["token"], "edge-router-01")
    with stack.http(token="") as http:
        resp = http.post("/v1/register", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert set(out) == {"node_id", "mesh_ip", "signing_public_key", "signing_key_id", "nsk", "peer_snapshot",
                        "domain_mesh_cidr"}
    cidr = stack.sql_value("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s", domain_id)
    assert out["domain_mesh_cidr"] == cidr
    assert out["mesh_ip"] == str(ipaddress.ip_network(cidr).network_address + 1)
    assert out["peer_snapshot"] == []
    assert resp.headers["cache-control"] == "no-store"

    key_id, key = stack.sql("SELECT key_id, public_key FROM plexsphere.domain_signing_keys "
                            "WHERE domain_id = %s AND active", domain_id)[0]
    assert out["signing_key_id"] == key_id
    # DECISIONS 4: every Domain's first key is #k1, even beside the seeded dev Domain.
    assert key_id == "did:plexsphere:domain/dev#k1"
    assert base64.b64decode(out["signing_public_key"], validate=True) == bytes(key)
    assert len(out["signing_public_key"]) == 44

    nsk = base64.b64decode(out["nsk"], validate=True)
    assert len(nsk) == 32
    node = stack.sql("""SELECT n.env, n.name, n.public_key, host(n.mesh_ip), n.nsk_wrapped, n.nsk_digest, n.kind,
                               r.handle, r.origin, n.resource_id
                          FROM plexsphere.nodes n JOIN plexsphere.resources r ON r.id = n.resource_id
                         WHERE n.id = %s""", uuid.UUID(out["node_id"]))[0]
    env, name, stored_key, mesh_ip, wrapped, digest, kind, handle, origin, _ = node
    assert (env, name, mesh_ip, kind, handle, origin) == ("dev", "edge-router-01", out["mesh_ip"], "node",
                                                          "edge-router-01", "adopted")
    assert bytes(stored_key) == base64.b64decode(body["public_key"])
    ring = keyring(stack)
    # The NSK is stored only wrapped (bound to its row) and as a lookup digest, never in plaintext.
    assert nsk not in bytes(wrapped)
    assert ring.unwrap(bytes(wrapped), f"nsk:{out['node_id']}".encode()) == nsk
    assert bytes(digest) == ring.digest("nsk", nsk)
    row = token_row(stack, uuid.UUID(token["token_id"]))
    assert row["consumed_at"] is not None and row["consumed_nonce"] == body["nonce"]
    assert stack.sql_value("SELECT consumed_by_node FROM plexsphere.bootstrap_tokens WHERE id = %s",
                           uuid.UUID(token["token_id"])) == uuid.UUID(out["node_id"])


def test_the_nsk_authenticates_the_node_in_both_bearer_forms(stack, fleet):
    from types import SimpleNamespace

    from plexsphere.server.auth import resolve_node_token

    _, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id, env="staging")
        out = http.post("/v1/register", json=register_body(project_id, token["token"])).json()
    node_id = uuid.UUID(out["node_id"])
    nsk = base64.b64decode(out["nsk"])

    async def resolve(bearer: str):
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=1,
                                         server_settings={"search_path": "plexsphere"})
        try:
            return await resolve_node_token(SimpleNamespace(pool=pool, keyring=keyring(stack)), bearer)
        finally:
            await pool.close()

    canonical = asyncio.run(resolve(crypto.format_nsk_bearer("staging", node_id, nsk)))
    bare = asyncio.run(resolve(out["nsk"]))
    assert canonical.node_id == bare.node_id == node_id
    assert canonical.env == "staging"
    assert asyncio.run(resolve(crypto.b64(secrets.token_bytes(32)))) is None


def test_an_authorization_header_is_ignored(stack, fleet):
    _, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
    with stack.http(token=token["token"]) as http:  # plexd sends the bootstrap token as a bearer
        assert http.post("/v1/register", json=register_body(project_id, token["token"])).status_code == 200
    with stack.http() as http:
        token = issue(http, project_id)
    with stack.http(token="garbage") as http:
        assert http.post("/v1/register", json=register_body(project_id, token["token"])).status_code == 200


def test_consecutive_nodes_get_consecutive_addresses(stack, fleet):
    domain_id, project_id = fleet
    cidr = stack.sql_value("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s", domain_id)
    base = ipaddress.ip_network(cidr).network_address
    with stack.http() as http:
        ips = [http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"])).json()
               ["mesh_ip"] for _ in range(3)]
    assert ips == [str(base + 1), str(base + 2), str(base + 3)]


# -- adoption (DECISIONS 2) -----------------------------------------------------------------------
def test_adoption_creates_the_resource_in_the_same_transaction(stack, fleet):
    _, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        body = register_body(project_id, token["token"], "node-12", requested_resource_id="edge-router-07")
        out = http.post("/v1/register", json=body).json()
    handle, name, origin, external_ref = stack.sql(
        """SELECT r.handle, n.name, r.origin, r.external_ref FROM plexsphere.nodes n
           JOIN plexsphere.resources r ON r.id = n.resource_id WHERE n.id = %s""", uuid.UUID(out["node_id"]))[0]
    # The platform handle is the requested one; resource_id stays the substrate's own name.
    assert (handle, name, origin, external_ref) == ("edge-router-07", "node-12", "adopted", "node-12")


def test_an_existing_resource_is_bound_not_duplicated(stack, fleet):
    domain_id, project_id = fleet
    resource_id = uuid.uuid4()
    stack.sql("""INSERT INTO plexsphere.resources (id, project_id, domain_id, handle, kind, origin, created_at,
                                                   updated_at)
                 VALUES (%s, %s, %s, 'pre-made', 'vm', 'adopted', now(), now())""",
              resource_id, project_id, domain_id)
    with stack.http() as http:
        token = issue(http, project_id)
        out = http.post("/v1/register", json=register_body(project_id, token["token"], "pre-made", adopt=False)).json()
    assert stack.sql_value("SELECT resource_id FROM plexsphere.nodes WHERE id = %s",
                           uuid.UUID(out["node_id"])) == resource_id
    assert stack.sql_value("SELECT count(*) FROM plexsphere.resources WHERE project_id = %s", project_id) == 1


def test_unknown_handle_without_adoption_is_404_and_burns_nothing(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        before = pool_state(stack, domain_id)
        for requested in (None, ""):
            resp = http.post("/v1/register", json=register_body(project_id, token["token"], "nobody-made-me",
                                                                adopt=False, requested_resource_id=requested))
            assert resp.status_code == 404 and resp.json()["code"] == "resource_not_found"
    _unchanged(stack, domain_id, project_id, token["token_id"], before)
    assert stack.sql_value("SELECT count(*) FROM plexsphere.resources WHERE project_id = %s", project_id) == 0


def test_a_handle_bound_to_a_live_node_is_409_and_burns_nothing(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        first = issue(http, project_id)
        assert http.post("/v1/register", json=register_body(project_id, first["token"], "taken")).status_code == 200
        second = issue(http, project_id)
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, second["token"], "taken"))
    assert resp.status_code == 409 and resp.json()["code"] == "resource_already_bound"
    assert token_row(stack, uuid.UUID(second["token_id"]))["consumed_at"] is None
    assert count_nodes(stack, project_id) == 1
    assert pool_state(stack, domain_id) == before


# -- denials: each proves the token, the inventory and the pool are untouched ----------------------
@pytest.mark.parametrize("bad_key", [
    "",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # all-zero
    "not-base64-at-all-not-base64-at-all-not-bas=",
    base64.b64encode(b"\x01" * 31).decode(),  # 31 bytes
    base64.b64encode(b"\x01" * 33).decode(),  # 33 bytes
    base64.b64encode(b"\x01" * 32).decode().rstrip("="),  # unpadded
    base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # url-safe alphabet
    None,
    12345,
])
def test_bad_public_key_is_400_and_never_burns_the_token(stack, fleet, bad_key):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        before = pool_state(stack, domain_id)
        body = register_body(project_id, token["token"])
        body["public_key"] = bad_key
        resp = http.post("/v1/register", json=body)
        assert resp.status_code == 400 and resp.json()["code"] == "public_key_invalid"
        assert resp.headers["content-type"].startswith("application/problem+json")
        _unchanged(stack, domain_id, project_id, token["token_id"], before)
        # The same token still redeems once the key is fixed.
        body["public_key"] = public_key()
        assert http.post("/v1/register", json=body).status_code == 200


def test_public_key_is_checked_before_every_other_field(stack, fleet):
    _, project_id = fleet
    with stack.http() as http:
        resp = http.post("/v1/register", json={"project_id": "", "resource_id": "", "bootstrap_token": "",
                                               "nonce": "", "public_key": "short="})
    assert resp.status_code == 400 and resp.json()["code"] == "public_key_invalid"


@pytest.mark.parametrize("field, value, code", [
    ("bootstrap_token", "", "invalid_bootstrap_token"),
    ("bootstrap_token", None, "invalid_bootstrap_token"),
    ("bootstrap_token", "psk_dev_not_a_bootstrap_token", "invalid_bootstrap_token"),
    ("project_id", "00000000-0000-0000-0000-000000000000", "invalid_project_id"),
    ("project_id", "not-a-uuid", "invalid_project_id"),
    ("project_id", None, "invalid_project_id"),
    ("resource_id", "", "invalid_resource_id"),
    ("resource_id", None, "invalid_resource_id"),
    ("nonce", "", "invalid_nonce"),
    ("nonce", 7, "invalid_nonce"),
])
def test_empty_or_zero_fields_are_422_and_burn_nothing(stack, fleet, field, value, code):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        before = pool_state(stack, domain_id)
        body = register_body(project_id, token["token"])
        if value is None:
            del body[field]
        else:
            body[field] = value
        resp = http.post("/v1/register", json=body)
    assert resp.status_code == 422 and resp.json()["code"] == code, resp.text
    _unchanged(stack, domain_id, project_id, token["token_id"], before)


def test_a_token_this_server_never_issued_is_403(stack, fleet):
    domain_id, project_id = fleet
    from plexsphere.domain.bootstrap_tokens import format_token

    forged = format_token("dev", project_id, "node", secrets.token_bytes(20))
    before = pool_state(stack, domain_id)
    with stack.http() as http:
        resp = http.post("/v1/register", json=register_body(project_id, forged))
    assert resp.status_code == 403 and resp.json()["code"] == "token_invalid"
    assert count_nodes(stack, project_id) == 0 and pool_state(stack, domain_id) == before


def test_second_redemption_is_403_token_consumed(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        assert http.post("/v1/register", json=register_body(project_id, token["token"])).status_code == 200
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, token["token"]))
    assert resp.status_code == 403 and resp.json()["code"] == "token_consumed"
    assert "reason" not in resp.json()  # a plain Problem, not PermissionDenied
    assert count_nodes(stack, project_id) == 1 and pool_state(stack, domain_id) == before


def test_expired_token_is_403_token_expired(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id, ttl=300)
        stack.sql("UPDATE plexsphere.bootstrap_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
                  uuid.UUID(token["token_id"]))
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, token["token"]))
    assert resp.status_code == 403 and resp.json()["code"] == "token_expired"
    _unchanged(stack, domain_id, project_id, token["token_id"], before)


def test_revoked_token_is_403_token_revoked(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
        assert http.delete(f"/v1/projects/{project_id}/bootstrap-tokens/{token['token_id']}").status_code == 204
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, token["token"]))
    assert resp.status_code == 403 and resp.json()["code"] == "token_revoked"
    assert count_nodes(stack, project_id) == 0 and pool_state(stack, domain_id) == before
    assert token_row(stack, uuid.UUID(token["token_id"]))["consumed_at"] is None


def test_bridge_token_at_the_node_seam_is_403_kind_mismatch(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id, kind="bridge")
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, token["token"]))
    assert resp.status_code == 403 and resp.json()["code"] == "kind_mismatch"
    _unchanged(stack, domain_id, project_id, token["token_id"], before)


def test_token_of_another_project_is_403_project_mismatch(stack, fleet):
    domain_id, project_id = fleet
    other_project = make_project(stack, domain_id)
    with stack.http() as http:
        token = issue(http, project_id)
        before = pool_state(stack, domain_id)
        for claimed in (other_project, uuid.uuid4()):
            resp = http.post("/v1/register", json=register_body(claimed, token["token"]))
            assert resp.status_code == 403 and resp.json()["code"] == "project_mismatch"
    _unchanged(stack, domain_id, project_id, token["token_id"], before)
    assert count_nodes(stack, other_project) == 0


def test_reused_nonce_is_403_nonce_collision(stack, fleet):
    domain_id, project_id = fleet
    nonce = secrets.token_hex(16)
    with stack.http() as http:
        first, second = issue(http, project_id), issue(http, project_id)
        assert http.post("/v1/register", json=register_body(project_id, first["token"], nonce=nonce)).status_code \
            == 200
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, second["token"], nonce=nonce))
        assert resp.status_code == 403 and resp.json()["code"] == "nonce_collision"
        assert token_row(stack, uuid.UUID(second["token_id"]))["consumed_at"] is None
        assert count_nodes(stack, project_id) == 1 and pool_state(stack, domain_id) == before
        # The nonce is scoped to the Project: another Project may use it.
        other = make_project(stack, domain_id)
        third = issue(http, other)
        assert http.post("/v1/register", json=register_body(other, third["token"], nonce=nonce)).status_code == 200


def test_malformed_and_oversized_bodies(stack, fleet):
    _, project_id = fleet
    with stack.http() as http:
        assert http.post("/v1/register", content=b"{not json",
                         headers={"content-type": "application/json"}).json()["code"] == "invalid_body"
        assert http.post("/v1/register", json=["a list"]).json()["code"] == "invalid_body"
        huge = register_body(project_id, "psb_dev_aaaa_node_" + "a" * 32, pad="x" * 10_000)
        assert http.post("/v1/register", json=huge).status_code == 413


# -- allocation -----------------------------------------------------------------------------------
def test_a_full_pool_is_503_pool_exhausted_and_the_token_stays_live(stack):
    domain_id = make_domain(stack, stack.unique_cidr(29))
    project_id = make_project(stack, domain_id)
    cidr = ipaddress.ip_network(stack.sql_value("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s",
                                                domain_id))
    with stack.http() as http:
        ips = [http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"])).json()
               ["mesh_ip"] for _ in range(6)]
        assert ips == [str(cidr.network_address + i) for i in range(1, 7)]
        token = issue(http, project_id)
        before = pool_state(stack, domain_id)
        resp = http.post("/v1/register", json=register_body(project_id, token["token"], "seventh"))
        assert resp.status_code == 503 and resp.json()["code"] == "pool_exhausted"
        assert token_row(stack, uuid.UUID(token["token_id"]))["consumed_at"] is None
        assert count_nodes(stack, project_id) == 6 and pool_state(stack, domain_id) == before
        # Adoption rolled back with it: the Resource the seventh Node asked for does not exist.
        assert stack.sql_value("SELECT count(*) FROM plexsphere.resources WHERE handle = 'seventh'") == 0

        # Free .3 the way node deletion does; the same token now gets exactly that address.
        _delete_node_and_release(stack, domain_id, str(cidr.network_address + 3))
        retry = http.post("/v1/register", json=register_body(project_id, token["token"], "seventh"))
    assert retry.status_code == 200 and retry.json()["mesh_ip"] == str(cidr.network_address + 3)


def _delete_node_and_release(stack, domain_id, mesh_ip: str) -> bool:
    from plexsphere.services.addressing import release_address

    async def run() -> bool:
        conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": "plexsphere"})
        try:
            async with conn.transaction():
                offset = await conn.fetchval(
                    "DELETE FROM nodes WHERE domain_id = $1 AND mesh_ip = $2::inet RETURNING host_offset",
                    domain_id, mesh_ip)
                return await release_address(conn, domain_id, offset)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_released_addresses_are_reused_lowest_first(stack, fleet):
    domain_id, project_id = fleet
    cidr = ipaddress.ip_network(stack.sql_value("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s",
                                                domain_id))
    at = lambda i: str(cidr.network_address + i)  # noqa: E731
    with stack.http() as http:
        def enrol() -> str:
            return http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"])
                             ).json()["mesh_ip"]

        assert [enrol() for _ in range(5)] == [at(1), at(2), at(3), at(4), at(5)]
        assert _delete_node_and_release(stack, domain_id, at(4))
        assert _delete_node_and_release(stack, domain_id, at(2))
        assert [enrol(), enrol(), enrol()] == [at(2), at(4), at(6)]


def test_release_address_refuses_offsets_in_use_or_never_allocated(stack, fleet):
    from plexsphere.services.addressing import release_address

    domain_id, project_id = fleet
    with stack.http() as http:
        http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"]))

    async def release(offset: int) -> bool:
        conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": "plexsphere"})
        try:
            return await release_address(conn, domain_id, offset)
        finally:
            await conn.close()

    assert asyncio.run(release(1)) is False  # still held by the Node
    assert asyncio.run(release(200)) is False  # never handed out
    assert asyncio.run(release(0)) is False  # the network address
    assert stack.sql_value("SELECT count(*) FROM plexsphere.released_addresses WHERE domain_id = %s", domain_id) == 0


def test_peer_snapshot_lists_the_domains_anchored_peers_sorted(stack, fleet):
    domain_id, project_id = fleet
    anchored = insert_nodes_sql(stack.database_url, domain_id, project_id, [10, 11, 12], anchored=True)
    insert_nodes_sql(stack.database_url, domain_id, project_id, [13])  # registered, not yet anchored
    first, second, _ = sorted(anchored)
    stack.sql("UPDATE plexsphere.peers SET endpoint = NULL WHERE node_id = %s", first)  # never reported
    stack.sql("UPDATE plexsphere.peers SET endpoint = %s WHERE node_id = %s", 'host"x\\:1', second)
    with stack.http() as http:
        out = http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"])).json()
    snapshot = out["peer_snapshot"]
    assert [p["node_id"] for p in snapshot] == sorted(str(n) for n in anchored)
    keys = dict(stack.sql("SELECT id::text, public_key FROM plexsphere.nodes WHERE id = ANY(%s)", anchored))
    cidr = ipaddress.ip_network(out["domain_mesh_cidr"])
    for peer in snapshot:
        assert base64.b64decode(peer["public_key"]) == bytes(keys[peer["node_id"]])
        assert len(peer["public_key"]) == 44
        assert ipaddress.ip_address(peer["mesh_ip"]) in cidr
    assert "endpoint" not in snapshot[0]  # absent, not null, when unknown
    assert snapshot[1]["endpoint"] == 'host"x\\:1'  # escaped, not spliced raw
    assert snapshot[2]["endpoint"].endswith(":51820")
    assert out["node_id"] not in {p["node_id"] for p in snapshot}


# -- races ----------------------------------------------------------------------------------------
async def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        return await asyncio.gather(*(http.post("/v1/register", json=b) for b in bodies))


def test_fifty_concurrent_redemptions_of_one_token_have_one_winner(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        token = issue(http, project_id)
    bodies = [register_body(project_id, token["token"]) for _ in range(50)]
    responses = asyncio.run(_post_all(stack.url, bodies))
    codes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert codes == [(200, None)] + [(403, "token_consumed")] * 49
    assert count_nodes(stack, project_id) == 1
    assert pool_state(stack, domain_id) == (2, 0)  # exactly one address taken


def test_two_hundred_concurrent_registrations_get_two_hundred_distinct_addresses(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        tokens = [issue(http, project_id)["token"] for _ in range(200)]
    responses = asyncio.run(_post_all(stack.url, [register_body(project_id, t) for t in tokens]))
    assert [r.status_code for r in responses] == [200] * 200, {r.text for r in responses if r.status_code != 200}
    cidr = ipaddress.ip_network(stack.sql_value("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s",
                                                domain_id))
    ips = {ipaddress.ip_address(r.json()["mesh_ip"]) for r in responses}
    assert len(ips) == 200
    assert all(ip in cidr for ip in ips)
    assert cidr.network_address not in ips and cidr.broadcast_address not in ips
    # Lowest free first, whatever the interleaving: exactly .1 – .200.
    assert ips == {cidr.network_address + i for i in range(1, 201)}
    assert len({r.json()["node_id"] for r in responses}) == 200
    assert len({r.json()["nsk"] for r in responses}) == 200


def test_concurrent_adoption_of_one_handle_binds_exactly_one_node(stack, fleet):
    domain_id, project_id = fleet
    with stack.http() as http:
        tokens = [issue(http, project_id) for _ in range(10)]
    responses = asyncio.run(_post_all(stack.url, [register_body(project_id, t["token"], "contested")
                                                  for t in tokens]))
    codes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert codes == [(200, None)] + [(409, "resource_already_bound")] * 9
    assert stack.sql_value("SELECT count(*) FROM plexsphere.resources WHERE project_id = %s AND handle = 'contested'",
                           project_id) == 1
    live = stack.sql_value("SELECT count(*) FROM plexsphere.bootstrap_tokens WHERE project_id = %s "
                           "AND consumed_at IS NULL", project_id)
    assert live == 9
    assert pool_state(stack, domain_id) == (2, 0)


def test_concurrent_registrations_with_one_nonce_admit_one(stack, fleet):
    domain_id, project_id = fleet
    nonce = secrets.token_hex(16)
    with stack.http() as http:
        tokens = [issue(http, project_id)["token"] for _ in range(10)]
    responses = asyncio.run(_post_all(stack.url, [register_body(project_id, t, nonce=nonce) for t in tokens]))
    codes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert codes == [(200, None)] + [(403, "nonce_collision")] * 9
    assert count_nodes(stack, project_id) == 1
    assert pool_state(stack, domain_id) == (2, 0)


def test_every_registration_is_announced_for_anchoring(stack, fleet):
    """The node.registered outbox event commits with the Node: the mesh worker anchors every one."""
    _, project_id = fleet
    with stack.http() as http:
        ids = [http.post("/v1/register", json=register_body(project_id, issue(http, project_id)["token"])).json()
               ["node_id"] for _ in range(3)]
    wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.peers WHERE node_id = ANY(%s)",
                                       [uuid.UUID(i) for i in ids]) == 3, message="nodes anchored as peers")
