"""Helpers for the rotation tests (no tests here): Nodes written straight into the stack's database
— registered, optionally anchored with a live per-node PSK — so the rotation routes are exercised
independently of the enrolment and anchoring pipeline (the tutorial test covers that path)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from dataclasses import dataclass
from typing import Any

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.db.pool import connect
from plexsphere.ids import uuid7
from plexsphere.services import bootstrap, psk

_offsets = itertools.count(1)


def keyring_of(stack) -> Keyring:
    return Keyring.loads((stack.data_dir / "kek.keyring").read_text())


def run(stack, fn):
    """Runs `await fn(conn)` on a fresh asyncpg connection to the stack's database."""

    async def go():
        conn = await connect(stack.database_url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def wg_public_key() -> str:
    return base64.b64encode(crypto.x25519_keypair()[1]).decode()


@dataclass
class Mesh:
    domain_id: uuid.UUID
    project_id: uuid.UUID


@dataclass
class SqlNode:
    node_id: uuid.UUID
    nsk: bytes
    public_key: str
    mesh_ip: str

    @property
    def bearer(self) -> str:
        return crypto.format_nsk_bearer("dev", self.node_id, self.nsk)

    @property
    def bare_bearer(self) -> str:
        return base64.b64encode(self.nsk).decode()


def new_mesh(stack) -> Mesh:
    """A Domain (own CIDR) with one Project, both with their parent tuples in place."""
    keyring = keyring_of(stack)
    cidr = stack.unique_cidr()

    async def go(conn):
        async with conn.transaction():
            domain_id = await bootstrap.insert_domain(conn, keyring, slug=stack.unique("d"), name="Rot",
                                                      mesh_cidr=cidr)
            project_id = uuid7()
            await conn.execute("INSERT INTO projects (id, domain_id, slug, name, created_at, updated_at) "
                               "VALUES ($1, $2, $3, 'P', now(), now())", project_id, domain_id, stack.unique("p"))
            await bootstrap.grant(conn, "project", str(project_id), "parent", "domain", str(domain_id),
                                  project_id=project_id)
            return Mesh(domain_id, project_id)

    return run(stack, go)


def add_node(stack, mesh: Mesh, *, anchored: bool = True) -> SqlNode:
    keyring = keyring_of(stack)
    offset = next(_offsets)
    nsk = crypto.random_bytes(32)
    public_key = wg_public_key()

    async def go(conn):
        node_id, resource_id = uuid7(), uuid7()
        cidr = await conn.fetchval("SELECT mesh_cidr::text FROM domains WHERE id = $1", mesh.domain_id)
        mesh_ip = cidr.rsplit(".", 1)[0] + f".{offset % 250 + 1}"
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO resources (id, project_id, domain_id, handle, kind, origin, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, 'vm', 'adopted', now(), now())",
                resource_id, mesh.project_id, mesh.domain_id, f"r-{node_id}")
            await conn.execute(
                """INSERT INTO nodes (id, domain_id, project_id, resource_id, name, env, public_key,
                                      public_key_set_at, mesh_ip, host_offset, nsk_wrapped, nsk_digest,
                                      created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, 'dev', $6, now(), $7::inet, $8, $9, $10, now(), now())""",
                node_id, mesh.domain_id, mesh.project_id, resource_id, f"n{offset}",
                base64.b64decode(public_key), mesh_ip, offset,
                keyring.wrap(nsk, f"nsk:{node_id}".encode()), keyring.digest("nsk", nsk))
            await bootstrap.grant(conn, "node", str(node_id), "parent", "project", str(mesh.project_id),
                                  project_id=mesh.project_id)
            if anchored:
                await conn.execute(
                    "INSERT INTO peers (id, node_id, domain_id, anchored_at, reachability_changed_at) "
                    "VALUES ($1, $2, $3, now(), now())", uuid7(), node_id, mesh.domain_id)
                await psk.issue_node_psk(conn, keyring, node_id)
        return SqlNode(node_id, nsk, public_key, mesh_ip)

    return run(stack, go)


def anchor(stack, node: SqlNode, mesh: Mesh) -> None:
    keyring = keyring_of(stack)

    async def go(conn):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO peers (id, node_id, domain_id, anchored_at, reachability_changed_at) "
                "VALUES ($1, $2, $3, now(), now())", uuid7(), node.node_id, mesh.domain_id)
            await psk.issue_node_psk(conn, keyring, node.node_id)

    run(stack, go)


def peer_id_of(stack, node: SqlNode) -> str:
    return str(stack.sql_value("SELECT id FROM plexsphere.peers WHERE node_id = %s", node.node_id))


def events_of(stack, domain_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    import json

    rows = stack.sql("SELECT target_node_id, exclude_node_id, envelope FROM plexsphere.events "
                     "WHERE domain_id = %s AND type = %s ORDER BY seq", domain_id, event_type)
    return [{"target": r[0], "exclude": r[1], **json.loads(r[2])} for r in rows]


def complete(stack, node: SqlNode, new_key: str, *, bearer: str | None = None):
    with stack.http(token=bearer or node.bearer) as http:
        return http.post("/v1/keys/rotate", json={"new_public_key": new_key})


def operator_without_grants(stack) -> str:
    """An API token of a fresh local user holding no relation at all."""

    async def go(conn):
        user_id = await bootstrap.create_local_user(conn, None, stack.unique("u"), "Nobody", "password-123")
        _, token = await bootstrap.mint_api_token(conn, keyring_of(stack), user_id)
        return token

    return run(stack, go)
