"""The registration statement straight against PostgreSQL (no worker draining the outbox): what one
registration commits, and that a failure at its last write leaves nothing behind."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import asyncpg
import pytest

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.db import register as register_db
from plexsphere.db.pool import connect
from plexsphere.domain.bootstrap_tokens import format_token
from plexsphere.ids import uuid7
from plexsphere.services.bootstrap import insert_domain


async def _setup(url: str, keyring: Keyring, cidr: str = "10.77.0.0/24"):
    conn = await connect(url)
    domain_id = await insert_domain(conn, keyring, slug="tx", name="Tx", mesh_cidr=cidr)
    project_id = uuid7()
    await conn.execute("""INSERT INTO projects (id, domain_id, slug, name, created_at, updated_at)
                          VALUES ($1, $2, 'p', 'P', now(), now())""", project_id, domain_id)
    await conn.execute("DELETE FROM outbox")
    return conn, domain_id, project_id


async def _token(conn, keyring: Keyring, domain_id, project_id) -> str:
    plaintext = format_token("dev", project_id, "node", secrets.token_bytes(20))
    await conn.execute(
        """INSERT INTO bootstrap_tokens (id, project_id, domain_id, kind, env_prefix, digest, issued_by_user_id,
                                         issued_at, expires_at)
           VALUES ($1, $2, $3, 'node', 'dev', $4, $5, now(), now() + interval '1 hour')""",
        uuid7(), project_id, domain_id, keyring.digest("bootstrap-token", plaintext), uuid7(),
    )
    return plaintext


def _call(conn, keyring: Keyring, plaintext: str, project_id, handle: str, *, nsk_digest: bytes | None = None):
    node_id = uuid7()
    return register_db.register_node(
        conn, token_digest=keyring.digest("bootstrap-token", plaintext), project_id=project_id, handle=handle,
        name=handle, adopt=True, nonce=secrets.token_hex(8), public_key=crypto.x25519_keypair()[1], node_id=node_id,
        nsk_wrapped=keyring.wrap(b"k" * 32, f"nsk:{node_id}".encode()),
        nsk_digest=nsk_digest or secrets.token_bytes(32), new_resource_id=uuid7(),
    )


def test_one_registration_commits_node_token_resource_address_and_both_events(fresh_database):
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring)
        try:
            plaintext = await _token(conn, keyring, domain_id, project_id)
            registered = await _call(conn, keyring, plaintext, project_id, "edge-1")
            events = await conn.fetch("SELECT topic, payload FROM outbox ORDER BY id")
            consumed = await conn.fetchval("SELECT consumed_by_node FROM bootstrap_tokens")
            pool = await conn.fetchval("SELECT next_offset FROM address_pools WHERE domain_id = $1", domain_id)
            return registered, domain_id, project_id, [(e["topic"], e["payload"]) for e in events], consumed, pool
        finally:
            await conn.close()

    registered, domain_id, project_id, events, consumed, pool = asyncio.run(run())
    assert registered.mesh_ip == "10.77.0.1" and registered.adopted and registered.env == "dev"
    assert consumed == registered.node_id and pool == 2
    payload = {"node_id": str(registered.node_id), "domain_id": str(domain_id), "project_id": str(project_id),
               "resource_id": str(registered.resource_id)}
    assert events[0] == ("node.registered", payload)
    assert events[1] == ("resource.created", {"resource_id": str(registered.resource_id),
                                              "project_id": str(project_id), "domain_id": str(domain_id)})
    assert len(events) == 2


def test_a_failure_at_the_last_write_rolls_back_every_step(fresh_database):
    """An NSK digest clash makes the Node insert fail after the Resource was adopted and the address
    taken: the token must stay live, and no Resource, address or event may remain."""
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring)
        try:
            first = await _token(conn, keyring, domain_id, project_id)
            clash = secrets.token_bytes(32)
            await _call(conn, keyring, first, project_id, "edge-1", nsk_digest=clash)
            await conn.execute("DELETE FROM outbox")
            second = await _token(conn, keyring, domain_id, project_id)
            with pytest.raises(asyncpg.UniqueViolationError):
                await _call(conn, keyring, second, project_id, "edge-2", nsk_digest=clash)
            return await conn.fetchrow(
                """SELECT (SELECT count(*) FROM bootstrap_tokens WHERE consumed_at IS NULL) AS live,
                          (SELECT count(*) FROM resources WHERE handle = 'edge-2') AS resources,
                          (SELECT next_offset FROM address_pools) AS next_offset,
                          (SELECT count(*) FROM nodes) AS nodes,
                          (SELECT count(*) FROM outbox) AS events""")
        finally:
            await conn.close()

    state = dict(asyncio.run(run()))
    assert state == {"live": 1, "resources": 0, "next_offset": 2, "nodes": 1, "events": 0}


def test_a_domain_without_a_pool_row_gets_one_from_its_cidr(fresh_database):
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring, "10.78.0.0/30")
        try:
            await conn.execute("DELETE FROM address_pools")
            first = await _call(conn, keyring, await _token(conn, keyring, domain_id, project_id), project_id, "a")
            second = await _call(conn, keyring, await _token(conn, keyring, domain_id, project_id), project_id, "b")
            with pytest.raises(asyncpg.RaiseError, match="503:pool_exhausted"):
                await _call(conn, keyring, await _token(conn, keyring, domain_id, project_id), project_id, "c")
            return first.mesh_ip, second.mesh_ip
        finally:
            await conn.close()

    assert asyncio.run(run()) == ("10.78.0.1", "10.78.0.2")


def test_ipv6_domains_allocate_from_the_first_host(fresh_database):
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring, "fd00:50::/64")
        try:
            token = await _token(conn, keyring, domain_id, project_id)
            return (await _call(conn, keyring, token, project_id, "v6")).mesh_ip
        finally:
            await conn.close()

    assert asyncio.run(run()) == "fd00:50::1"


def test_node_ids_are_never_reused_across_registrations(fresh_database):
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring)
        try:
            ids = set()
            for i in range(5):
                token = await _token(conn, keyring, domain_id, project_id)
                ids.add((await _call(conn, keyring, token, project_id, f"n{i}")).node_id)
            return ids
        finally:
            await conn.close()

    ids = asyncio.run(run())
    assert len(ids) == 5 and all(isinstance(i, uuid.UUID) for i in ids)


def test_without_an_active_signing_key_nothing_registers(fresh_database):
    """A Node that could not verify its Domain's events must not be enrolled half-way."""
    keyring = Keyring.generate()

    async def run():
        conn, domain_id, project_id = await _setup(fresh_database, keyring)
        try:
            await conn.execute("UPDATE domain_signing_keys SET active = false")
            token = await _token(conn, keyring, domain_id, project_id)
            with pytest.raises(asyncpg.RaiseError, match="503:signing_unavailable"):
                await _call(conn, keyring, token, project_id, "edge")
            return await conn.fetchrow("""SELECT (SELECT count(*) FROM nodes) AS nodes,
                                                 (SELECT count(*) FROM resources) AS resources,
                                                 (SELECT count(*) FROM bootstrap_tokens WHERE consumed_at IS NULL) AS live""")
        finally:
            await conn.close()

    assert dict(asyncio.run(run())) == {"nodes": 0, "resources": 0, "live": 1}
