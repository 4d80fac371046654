"""First-start state for `plexsphere up`: the demo Domain and the local admin. Idempotent: a
second `up` on the same database finds both and changes nothing."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from argon2 import PasswordHasher

from plexsphere.crypto import Keyring
from plexsphere.domain.authz import PLATFORM_ID
from plexsphere.ids import uuid7
from plexsphere.services import outbox
from plexsphere.services.signing import create_signing_key
from plexsphere.timeutil import utcnow

DEMO_DOMAIN = {"slug": "acme-corp", "name": "Acme Corp", "mesh_cidr": "10.50.0.0/24", "env": "dev"}
LOCAL_ADMIN_USERNAME = "admin"

password_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass
class SeedResult:
    domain_id: uuid.UUID
    admin_id: uuid.UUID
    admin_password: str | None  # only when the admin was created by this call


def host_capacity(cidr: str) -> int:
    """Highest usable host offset: network (offset 0) and, for IPv4, broadcast are excluded."""
    network = ipaddress.ip_network(cidr)
    size = network.num_addresses
    if network.version == 4:
        return max(size - 2, 0) if network.prefixlen < 31 else size - 1
    return size - 1


async def insert_domain(
    conn: asyncpg.Connection,
    keyring: Keyring,
    *,
    slug: str,
    name: str,
    mesh_cidr: str,
    env: str = "dev",
    description: str = "",
    region: str | None = None,
    created_by: str | None = None,
    reachability: tuple[int, int, int] | None = None,
    max_key_age_s: int | None = None,
) -> uuid.UUID:
    """Writes a Domain with its first signing key and address pool, and the outbox event from which
    the worker mirrors its authorization tuples. Call inside a transaction."""
    now = utcnow()
    domain_id = uuid7()
    heartbeat, stale, unreachable = reachability or (30, 90, 300)
    await conn.execute(
        """INSERT INTO domains (id, slug, name, description, region, env, mesh_cidr, heartbeat_interval_s,
                                stale_after_s, unreachable_after_s, max_key_age_s, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::cidr, $8, $9, $10, $11, $12, $12)""",
        domain_id, slug, name, description, region, env, mesh_cidr, heartbeat, stale, unreachable,
        max_key_age_s, now,
    )
    await conn.execute(
        "INSERT INTO address_pools (domain_id, next_offset, last_offset) VALUES ($1, 1, $2)",
        # bigint column: an IPv6 /64 has more host offsets than it can hold, and no allocator gets there.
        domain_id, min(host_capacity(mesh_cidr), 2**63 - 1),
    )
    await create_signing_key(conn, keyring, domain_id, env)
    await outbox.enqueue(conn, "domain.created", {"domain_id": str(domain_id), "created_by": created_by})
    return domain_id


async def seed(conn: asyncpg.Connection, keyring: Keyring) -> SeedResult:
    async with conn.transaction():
        # Serialise concurrent first starts on one database.
        await conn.execute("SELECT pg_advisory_xact_lock(4242424243)")
        domain_id = await conn.fetchval("SELECT id FROM domains WHERE slug = $1", DEMO_DOMAIN["slug"])
        if domain_id is None:
            domain_id = await insert_domain(conn, keyring, **DEMO_DOMAIN)
        admin_id = await conn.fetchval("SELECT id FROM identities WHERE username = $1", LOCAL_ADMIN_USERNAME)
        password = None
        if admin_id is None:
            password = secrets.token_urlsafe(18)
            admin_id = await create_local_user(conn, domain_id, LOCAL_ADMIN_USERNAME, "Local Admin", password)
            await grant(conn, "platform", PLATFORM_ID, "admin", "user", str(admin_id), source="seed")
        return SeedResult(domain_id, admin_id, password)


async def create_local_user(
    conn: asyncpg.Connection, domain_id: uuid.UUID | None, username: str, display_name: str, password: str,
    email: str | None = None,
) -> uuid.UUID:
    now = utcnow()
    identity_id = uuid7()
    await conn.execute(
        """INSERT INTO identities (id, domain_id, kind, username, display_name, email, external_subject,
                                   password_hash, created_at, updated_at)
           VALUES ($1, $2, 'user', $3, $4, $5, $6, $7, $8, $8)""",
        identity_id, domain_id, username, display_name, email, f"local:{username}",
        password_hasher.hash(password), now,
    )
    return identity_id


async def set_password(conn: asyncpg.Connection, username: str, password: str) -> bool:
    status = await conn.execute(
        "UPDATE identities SET password_hash = $2, updated_at = now() WHERE username = $1",
        username, password_hasher.hash(password),
    )
    return status.endswith(" 1")


async def grant(
    conn: asyncpg.Connection, object_type: str, object_id: str, relation: str, subject_type: str, subject_id: str,
    *, source: str = "mirror", project_id: uuid.UUID | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO relation_tuples (id, object_type, object_id, relation, subject_type, subject_id,
                                        project_id, source, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
           ON CONFLICT (object_type, object_id, relation, subject_type, subject_id, subject_relation) DO NOTHING""",
        uuid7(), object_type, object_id, relation, subject_type, subject_id, project_id, source,
    )


async def mint_api_token(
    conn: asyncpg.Connection, keyring: Keyring, identity_id: uuid.UUID, env_prefix: str = "dev",
    ttl: timedelta = timedelta(days=90),
) -> tuple[uuid.UUID, str]:
    """Returns (token id, plaintext). Only the digest is stored."""
    from plexsphere.crypto import b64url, random_bytes

    plaintext = f"psk_{env_prefix}_{b64url(random_bytes(32))}"
    token_id = uuid7()
    now = utcnow()
    await conn.execute(
        """INSERT INTO api_tokens (id, identity_id, env_prefix, digest, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        token_id, identity_id, env_prefix, keyring.digest("api-token", plaintext), now, now + ttl,
    )
    return token_id, plaintext
