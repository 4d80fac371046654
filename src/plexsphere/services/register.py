"""Use case: redeem a bootstrap token for a Node identity (`POST /v1/register`).

Everything that costs CPU (NSK generation, wrapping, digests) happens before the database is
touched; the writes then go as one statement (db/register.py → `register_node` in the schema), so
the per-Domain allocator lock is held only for the last few index updates and the commit.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from plexsphere import crypto
from plexsphere.db import register as register_db
from plexsphere.domain import bootstrap_tokens
from plexsphere.domain import register as rules
from plexsphere.domain.errors import ProblemError
from plexsphere.ids import uuid7
from plexsphere.server.runtime import Runtime
from plexsphere.services import peer_list

# Constraint → the contract's answer when a concurrent registration won the race.
_UNIQUE_CONFLICTS = {
    "bootstrap_tokens_nonce": ProblemError(403, "nonce_collision", rules.DENIAL_DETAILS["nonce_collision"]),
    "nodes_resource_live": ProblemError(409, "resource_already_bound", rules.DENIAL_DETAILS["resource_already_bound"]),
}


def nsk_aad(node_id: object) -> bytes:
    """Binds a wrapped NSK to its Node row."""
    return f"nsk:{node_id}".encode()


async def register(runtime: Runtime, body: Any, *, kind: str = "node") -> dict[str, Any]:
    """The RegisterResponse, ready for orjson (its `peer_snapshot` is a pre-encoded fragment).
    `kind` is the token kind this seam redeems (`bridge` for the bridge seam)."""
    request = rules.parse_register_request(body)
    keyring = runtime.keyring
    node_id = uuid7()
    nsk = crypto.random_bytes(crypto.NSK_BYTES)
    try:
        registered = await register_db.register_node(
            runtime.pool,
            token_digest=keyring.digest(bootstrap_tokens.DIGEST_PURPOSE, request.bootstrap_token),
            project_id=request.project_id,
            handle=request.handle,
            name=request.resource_id,
            adopt=request.adopt,
            nonce=request.nonce,
            public_key=request.public_key,
            node_id=node_id,
            nsk_wrapped=keyring.wrap(nsk, aad=nsk_aad(node_id)),
            nsk_digest=keyring.digest("nsk", nsk),  # the purpose server/auth.py resolves bare NSKs by
            new_resource_id=uuid7(),
            kind=kind,
        )
    except asyncpg.RaiseError as exc:
        denial = rules.denial_from_database(str(exc), kind)
        if denial is None:
            raise
        raise denial from None
    except asyncpg.UniqueViolationError as exc:
        conflict = _UNIQUE_CONFLICTS.get(exc.constraint_name or "")
        if conflict is None:
            raise
        raise ProblemError(conflict.status, conflict.code, conflict.detail) from None
    except asyncpg.ForeignKeyViolationError:  # the Project went away under us
        raise ProblemError(404, "project_not_found", rules.DENIAL_DETAILS["project_not_found"]) from None

    # The new Node is not anchored yet (the worker may just have done it: excluded either way).
    peers = await peer_list.peers_json(runtime.pool, registered.domain_id, exclude=registered.node_id,
                                       latest_seq=registered.latest_seq)
    return {
        "node_id": str(registered.node_id),
        "mesh_ip": registered.mesh_ip,
        "signing_public_key": crypto.b64(registered.signing_public_key),
        "signing_key_id": registered.signing_key_id,
        "nsk": crypto.b64(nsk),
        "peer_snapshot": orjson.Fragment(peers),  # already JSON: spliced in, not re-encoded
        "domain_mesh_cidr": registered.mesh_cidr,
    }

