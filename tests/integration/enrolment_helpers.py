"""Helpers shared by the enrolment tests: Projects made directly in SQL (until the tenancy API is
there), token issue, keypairs and register bodies."""

from __future__ import annotations

import base64
import secrets
import uuid

from plexsphere import crypto
from plexsphere.ids import uuid7


def make_domain(stack, cidr: str) -> uuid.UUID:
    """A Domain with its pool and signing key, written the way `plexsphere up` writes the seed."""
    import asyncio

    from plexsphere.crypto import Keyring
    from plexsphere.db.pool import connect
    from plexsphere.services.bootstrap import grant, insert_domain

    keyring = Keyring.load_or_create(stack.data_dir / "kek.keyring", create=False)

    async def create() -> uuid.UUID:
        conn = await connect(stack.database_url)
        try:
            async with conn.transaction():
                domain_id = await insert_domain(conn, keyring, slug=stack.unique("d"), name="Test", mesh_cidr=cidr)
                await grant(conn, "domain", str(domain_id), "parent", "platform", "plexsphere")
                await conn.execute("DELETE FROM outbox WHERE topic = 'domain.created' AND payload->>'domain_id' = $1",
                                   str(domain_id))
            return domain_id
        finally:
            await conn.close()

    return asyncio.run(create())


def make_project(stack, domain_id: uuid.UUID | None = None) -> uuid.UUID:
    """A Project row plus its parent tuple, so the platform admin's grant reaches it at once."""
    project_id = uuid7()
    domain_id = domain_id or stack.domain_id
    stack.sql(
        """INSERT INTO plexsphere.projects (id, domain_id, slug, name, created_at, updated_at)
           VALUES (%s, %s, %s, 'Enrolment test', now(), now())""",
        project_id, domain_id, stack.unique("p"),
    )
    stack.sql(
        """INSERT INTO plexsphere.relation_tuples (id, object_type, object_id, relation, subject_type, subject_id,
                                                   project_id, source, created_at)
           VALUES (%s, 'project', %s, 'parent', 'domain', %s, %s, 'mirror', now())""",
        uuid7(), str(project_id), str(domain_id), project_id,
    )
    return project_id


def issue(http, project_id, kind: str = "node", env: str = "dev", ttl: int = 3600) -> dict:
    resp = http.post(f"/v1/projects/{project_id}/bootstrap-tokens",
                     json={"kind": kind, "env_prefix": env, "ttl_seconds": ttl})
    assert resp.status_code == 201, resp.text
    return resp.json()


def public_key() -> str:
    return base64.b64encode(crypto.x25519_keypair()[1]).decode()


def register_body(project_id, token: str, name: str | None = None, *, adopt: bool = True, **overrides) -> dict:
    name = name or f"edge-{secrets.token_hex(5)}"
    body = {
        "project_id": str(project_id),
        "resource_id": name,
        "requested_resource_id": name if adopt else None,
        "bootstrap_token": token,
        "nonce": secrets.token_hex(16),
        "public_key": public_key(),
    }
    body.update(overrides)
    return body


def token_row(stack, token_id) -> dict:
    rows = stack.sql(
        "SELECT consumed_at, revoked_at, consumed_nonce FROM plexsphere.bootstrap_tokens WHERE id = %s", token_id
    )
    consumed_at, revoked_at, nonce = rows[0]
    return {"consumed_at": consumed_at, "revoked_at": revoked_at, "consumed_nonce": nonce}


def count_nodes(stack, project_id) -> int:
    return stack.sql_value("SELECT count(*) FROM plexsphere.nodes WHERE project_id = %s", project_id)


def pool_state(stack, domain_id) -> tuple[int, int]:
    """(next_offset, released count) — 'no address taken' means both unchanged."""
    return (
        stack.sql_value("SELECT next_offset FROM plexsphere.address_pools WHERE domain_id = %s", domain_id),
        stack.sql_value("SELECT count(*) FROM plexsphere.released_addresses WHERE domain_id = %s", domain_id),
    )


def make_user(stack, grants: tuple[tuple[str, str, str], ...] = ()) -> str:
    """A local user with the given (object_type, object_id, relation) grants; returns an API token."""
    import asyncio

    from plexsphere.crypto import Keyring
    from plexsphere.db.pool import connect
    from plexsphere.services.bootstrap import create_local_user, grant, mint_api_token

    keyring = Keyring.load_or_create(stack.data_dir / "kek.keyring", create=False)

    async def create() -> str:
        conn = await connect(stack.database_url)
        try:
            user_id = await create_local_user(conn, stack.domain_id, stack.unique("u"), "Test User", secrets.token_hex(8))
            for object_type, object_id, relation in grants:
                await grant(conn, object_type, object_id, relation, "user", str(user_id), source="api")
            _, token = await mint_api_token(conn, keyring, user_id)
            return token
        finally:
            await conn.close()

    return asyncio.run(create())


def keyring(stack):
    from plexsphere.crypto import Keyring

    return Keyring.load_or_create(stack.data_dir / "kek.keyring", create=False)


def insert_nodes_sql(database_url: str, domain_id, project_id, offsets, *, anchored: bool = False) -> list[uuid.UUID]:
    """Nodes (with their Resources, and Peers when `anchored`) written straight into the tables,
    bypassing registration: the fastest way to give a Domain an existing fleet. Advances the pool's
    high-water mark past the offsets used."""
    import psycopg

    offsets = list(offsets)
    node_ids = [uuid7() for _ in offsets]
    with psycopg.connect(database_url) as conn:
        cidr = conn.execute("SELECT mesh_cidr::text FROM plexsphere.domains WHERE id = %s", (domain_id,)).fetchone()[0]
        from plexsphere.domain.addressing import address_at

        with conn.cursor() as cur:
            cur.execute("SET search_path = plexsphere")
            resources = [(uuid7(), project_id, domain_id, f"prefill-{n}") for n in node_ids]
            cur.executemany(
                """INSERT INTO resources (id, project_id, domain_id, handle, kind, origin, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, 'vm', 'adopted', now(), now())""", resources)
            cur.executemany(
                """INSERT INTO nodes (id, domain_id, project_id, resource_id, kind, name, env, public_key,
                                      public_key_set_at, mesh_ip, host_offset, nsk_wrapped, nsk_digest,
                                      created_at, updated_at)
                   VALUES (%s, %s, %s, %s, 'node', %s, 'dev', %s, now(), %s, %s, '\\x00', %s, now(), now())""",
                [(node_id, domain_id, project_id, res[0], res[3], crypto.x25519_keypair()[1],
                  str(address_at(cidr, off)), off, secrets.token_bytes(32))
                 for node_id, res, off in zip(node_ids, resources, offsets, strict=True)])
            if anchored:
                cur.executemany(
                    """INSERT INTO peers (id, node_id, domain_id, anchored_at, endpoint, reachability,
                                          reachability_changed_at)
                       VALUES (%s, %s, %s, now(), %s, 'healthy', now())""",
                    [(uuid7(), node_id, domain_id, f"192.0.2.{i % 250 + 1}:51820")
                     for i, node_id in enumerate(node_ids)])
            cur.execute("UPDATE address_pools SET next_offset = greatest(next_offset, %s) WHERE domain_id = %s",
                        (max(offsets) + 1, domain_id))
    return node_ids
