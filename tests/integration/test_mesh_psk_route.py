"""`GET /v1/nodes/{id}/peers/{peer_node_id}/psk` (DECISIONS 6): both ends of an edge receive the
same 32 bytes, each sealed under its own NSK."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from cryptography.exceptions import InvalidTag
from tests.integration.enrolment_helpers import keyring
from tests.integration.mesh_helpers import enrol, make_domain, make_project, node_http

from plexsphere import crypto
from plexsphere.db.pool import connect
from plexsphere.services import psk


@pytest.fixture(scope="module")
def pair(stack):
    domain_id = make_domain(stack, stack.unique_cidr())
    project_id = make_project(stack, domain_id)
    return enrol(stack, project_id), enrol(stack, project_id)


def _fetch(stack, caller, peer):
    with node_http(stack, caller) as http:
        return http.get(f"/v1/nodes/{caller.node_id}/peers/{peer.node_id}/psk")


def test_both_ends_open_the_same_edge_psk(stack, pair):
    a, b = pair
    from_a, from_b = _fetch(stack, a, b), _fetch(stack, b, a)
    for resp in (from_a, from_b):
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/octet-stream"
        assert resp.headers["cache-control"] == "no-store"
        assert resp.headers["x-plexsphere-psk-kid"] == "psk-software-v1"
        assert resp.headers["x-plexsphere-psk-epoch"] == "1"
        assert len(resp.content) == 60
    psk_a = crypto.open_from_server(a.nsk_bytes, from_a.content)
    psk_b = crypto.open_from_server(b.nsk_bytes, from_b.content)
    assert psk_a == psk_b and len(psk_a) == 32
    with pytest.raises(InvalidTag):  # sealed for A: B's NSK cannot open it
        crypto.open_from_server(b.nsk_bytes, from_a.content)
    # A fresh nonce each time, the same key underneath.
    again = _fetch(stack, a, b)
    assert again.content != from_a.content and crypto.open_from_server(a.nsk_bytes, again.content) == psk_a


def test_reissuing_one_ends_psk_changes_the_edge_and_its_epoch(stack, pair):
    a, b = pair
    before = crypto.open_from_server(a.nsk_bytes, _fetch(stack, a, b).content)

    async def reissue():
        conn = await connect(stack.database_url)
        try:
            async with conn.transaction():
                await psk.issue_node_psk(conn, keyring(stack), uuid.UUID(b.node_id))
        finally:
            await conn.close()

    asyncio.run(reissue())
    resp = _fetch(stack, a, b)
    assert resp.headers["x-plexsphere-psk-epoch"] == "2"
    after = crypto.open_from_server(a.nsk_bytes, resp.content)
    assert after != before
    assert crypto.open_from_server(b.nsk_bytes, _fetch(stack, b, a).content) == after


def test_psk_errors(stack, pair):
    a, b = pair
    stranger_domain = make_domain(stack, stack.unique_cidr())
    stranger = enrol(stack, make_project(stack, stranger_domain))
    with node_http(stack, b) as http:
        other = http.get(f"/v1/nodes/{a.node_id}/peers/{b.node_id}/psk")
        assert other.status_code == 403 and other.json()["code"] == "node_id_mismatch"
    with stack.http(token="") as anon:
        assert anon.get(f"/v1/nodes/{a.node_id}/peers/{b.node_id}/psk").status_code == 401
    with node_http(stack, a) as http:
        for peer in (stranger.node_id, a.node_id, "01900000-0000-7000-8000-000000000000", "nope"):
            resp = http.get(f"/v1/nodes/{a.node_id}/peers/{peer}/psk")
            assert resp.status_code == 404 and resp.json()["code"] == "peer_not_found", peer
