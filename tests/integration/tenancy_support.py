"""Helpers for tenancy/authz tests: extra operator identities with their own API tokens, and
direct grants (what an operator with the right to grant would do), made in-process against the
stack's database."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from plexsphere.crypto import Keyring
from plexsphere.db.pool import connect
from plexsphere.services import bootstrap


@dataclass
class Operator:
    id: uuid.UUID
    token: str

    @property
    def subject(self) -> str:
        return f"user:{self.id}"


def keyring_of(stack) -> Keyring:
    return Keyring.load_or_create(stack.data_dir / "kek.keyring", create=False)


def make_operator(stack, domain_id=None, *, grants: list[tuple[str, str, str]] = (), email: str | None = None
                  ) -> Operator:
    """A user in `domain_id` (default: the seeded Domain) holding `grants` = [(object_type, object_id,
    relation)] and an API token."""

    async def run():
        conn = await connect(stack.database_url)
        try:
            async with conn.transaction():
                identity_id = await bootstrap.create_local_user(
                    conn, domain_id or stack.domain_id, stack.unique("user"), "Test User", "pw-" + uuid.uuid4().hex,
                    email=email)
                for object_type, object_id, relation in grants:
                    await bootstrap.grant(conn, object_type, str(object_id), relation, "user", str(identity_id),
                                          source="test")
                _, token = await bootstrap.mint_api_token(conn, keyring_of(stack), identity_id)
            return Operator(identity_id, token)
        finally:
            await conn.close()

    return asyncio.run(run())


def grant(stack, object_type: str, object_id, relation: str, subject: str) -> None:
    subject_type, _, subject_id = subject.partition(":")
    stack.sql(
        """INSERT INTO plexsphere.relation_tuples (id, object_type, object_id, relation, subject_type, subject_id,
                                                   source, created_at)
           VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, 'test', now()) ON CONFLICT DO NOTHING""",
        object_type, str(object_id), relation, subject_type, subject_id,
    )


def new_domain(stack, **overrides) -> dict:
    body = {"name": "Domain", "slug": stack.unique("d"), "mesh_cidr": stack.unique_cidr()}
    body.update(overrides)
    with stack.http() as http:
        resp = http.post("/v1/domains", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()
