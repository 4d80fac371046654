"""Domain signing keys: creation (wrapped under the KEK) and an in-process cache of unwrapped
private keys, so an event is signed without a database round trip or an unwrap."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

import asyncpg
import rfc8785

from plexsphere import crypto
from plexsphere.crypto import Keyring
from plexsphere.ids import uuid7
from plexsphere.timeutil import utcnow


@dataclass(frozen=True)
class SigningKey:
    domain_id: uuid.UUID
    key_id: str
    public_key: bytes
    private_key: bytes

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()


def key_id_for(env: str, generation: int) -> str:
    return f"did:plexsphere:domain/{env}#k{generation}"


def _aad(domain_id: uuid.UUID, key_id: str) -> bytes:
    return f"signing-key:{domain_id}:{key_id}".encode()


async def create_signing_key(conn: asyncpg.Connection, keyring: Keyring, domain_id: uuid.UUID, env: str) -> str:
    """Adds the Domain's next signing key generation as the active one; returns its key id."""
    generation = await conn.fetchval(
        "SELECT coalesce(max(generation), 0) + 1 FROM domain_signing_keys WHERE domain_id = $1", domain_id
    )
    key_id = key_id_for(env, generation)
    private, public = crypto.ed25519_generate()
    await conn.execute("UPDATE domain_signing_keys SET active = false WHERE domain_id = $1 AND active", domain_id)
    await conn.execute(
        """INSERT INTO domain_signing_keys (id, domain_id, key_id, generation, public_key, private_key_wrapped,
                                            active, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, true, $7)""",
        uuid7(), domain_id, key_id, generation, public, keyring.wrap(private, _aad(domain_id, key_id)), utcnow(),
    )
    return key_id


class SigningKeys:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._active: dict[uuid.UUID, SigningKey] = {}

    def forget(self, domain_id: uuid.UUID) -> None:
        self._active.pop(domain_id, None)

    async def active(self, conn: asyncpg.Connection | asyncpg.Pool, domain_id: uuid.UUID) -> SigningKey:
        cached = self._active.get(domain_id)
        if cached is not None:
            return cached
        row = await conn.fetchrow(
            "SELECT key_id, public_key, private_key_wrapped FROM domain_signing_keys WHERE domain_id = $1 AND active",
            domain_id,
        )
        if row is None:
            raise LookupError(f"domain {domain_id} has no active signing key")
        private = self._keyring.unwrap(row["private_key_wrapped"], _aad(domain_id, row["key_id"]))
        key = SigningKey(domain_id, row["key_id"], bytes(row["public_key"]), private)
        self._active[domain_id] = key
        return key


def sign_envelope(key: SigningKey, envelope_without_signature: dict) -> str:
    """DECISIONS 5: Ed25519 over the RFC 8785 canonical JSON of the envelope minus `signature`."""
    signature = crypto.ed25519_sign(key.private_key, rfc8785.dumps(envelope_without_signature))
    return base64.b64encode(signature).decode()


def verify_envelope(public_key: bytes, envelope: dict) -> bool:
    body = {k: v for k, v in envelope.items() if k != "signature"}
    try:
        signature = base64.b64decode(envelope.get("signature", ""), validate=True)
    except ValueError:
        return False
    return crypto.ed25519_verify(public_key, signature, rfc8785.dumps(body))
