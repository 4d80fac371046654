"""services/psk.py against real PostgreSQL: epochs, retirement, edge derivation."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from plexsphere.crypto import Keyring
from plexsphere.db.pool import connect
from plexsphere.ids import uuid7
from plexsphere.services import bootstrap, psk


async def _insert_node(conn, keyring, domain_id, offset):
    project_id, resource_id, node_id = uuid7(), uuid7(), uuid7()
    await conn.execute("INSERT INTO projects (id, domain_id, slug, name, created_at, updated_at) "
                       "VALUES ($1, $2, $3, 'P', now(), now())", project_id, domain_id, f"p{offset}")
    await conn.execute("INSERT INTO resources (id, project_id, domain_id, handle, kind, origin, created_at, updated_at)"
                       " VALUES ($1, $2, $3, $4, 'vm', 'adopted', now(), now())",
                       resource_id, project_id, domain_id, f"r{offset}")
    await conn.execute(
        """INSERT INTO nodes (id, domain_id, project_id, resource_id, name, env, public_key, public_key_set_at,
                              mesh_ip, host_offset, nsk_wrapped, nsk_digest, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'dev', $6, now(), $7::inet, $8, $9, $10, now(), now())""",
        node_id, domain_id, project_id, resource_id, f"n{offset}", bytes(31) + b"\x01", f"10.50.0.{offset}",
        offset, b"x", uuid.uuid4().bytes,
    )
    return node_id


def test_psk_epochs_retirement_and_edge_derivation(fresh_database):
    keyring = Keyring.generate()

    async def scenario():
        conn = await connect(fresh_database)
        try:
            async with conn.transaction():
                domain_id = await bootstrap.insert_domain(conn, keyring, slug="d", name="D", mesh_cidr="10.50.0.0/24")
                a = await _insert_node(conn, keyring, domain_id, 1)
                b = await _insert_node(conn, keyring, domain_id, 2)
            with pytest.raises(psk.MissingPskError):
                await psk.edge_psk(conn, keyring, a, b)
            assert await psk.issue_node_psk(conn, keyring, a) == ("psk-software-v1", keyring.active_version)
            await psk.issue_node_psk(conn, keyring, b)
            first = await psk.edge_psk_material(conn, keyring, a, b)
            assert first.epoch == 1 and len(first.psk) == 32
            assert (await psk.edge_psk(conn, keyring, b, a)) == first.psk
            await psk.issue_node_psk(conn, keyring, a)
            second = await psk.edge_psk_material(conn, keyring, b, a)
            assert second.epoch == 2 and second.psk != first.psk
            epochs = await conn.fetch("SELECT epoch, retired_at IS NULL AS live FROM node_psks WHERE node_id = $1 "
                                      "ORDER BY epoch", a)
            assert [(r["epoch"], r["live"]) for r in epochs] == [(1, False), (2, True)]
            await psk.retire_node_psk(conn, b)
            with pytest.raises(psk.MissingPskError):
                await psk.edge_psk(conn, keyring, a, b)
        finally:
            await conn.close()

    asyncio.run(scenario())
