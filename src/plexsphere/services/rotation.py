"""Mesh-key rotation use cases: preview, trigger (operator or key-age sweep), completion (Node),
history. Each is one transaction.

Concurrency relies on the partial unique index `key_rotations_one_pending` (one pending row per
Node): triggers insert with ON CONFLICT DO NOTHING, completions lock the pending row FOR UPDATE, so
two completions racing with different keys serialise on that row and the loser finds it completed.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from plexsphere.domain import rotation as rules
from plexsphere.domain.errors import ProblemError
from plexsphere.ids import uuid7
from plexsphere.server.pagination import decode_cursor, encode_cursor
from plexsphere.server.runtime import Runtime
from plexsphere.services import authz, events, psk
from plexsphere.timeutil import parse_rfc3339, rfc3339, utcnow

ROTATE_KEYS_EVENT = "rotate_keys"
PEER_KEY_ROTATED_EVENT = "peer_key_rotated"

_HISTORY_LISTING = "key-rotations"


# -- authorization ---------------------------------------------------------------------------------
def _not_found() -> ProblemError:
    return ProblemError(404, "node_not_found", "node not found")


def _not_anchored() -> ProblemError:
    # The contract requires peer_id, which a registered-but-not-yet-anchored Node does not have.
    return ProblemError(
        404, "node_not_anchored",
        "the node is not anchored as a mesh peer yet; retry once it appears in `plexctl peer list`",
    )


@dataclass(frozen=True)
class _Target:
    node_id: uuid.UUID
    domain_id: uuid.UUID
    peer_id: uuid.UUID


async def _load_target(conn: asyncpg.Connection, node_id: uuid.UUID) -> _Target:
    row = await conn.fetchrow(
        """SELECT n.id, n.domain_id, p.id AS peer_id
             FROM nodes n LEFT JOIN peers p ON p.node_id = n.id
            WHERE n.id = $1""",
        node_id,
    )
    if row is None:
        raise _not_found()
    if row["peer_id"] is None:
        raise _not_anchored()
    return _Target(row["id"], row["domain_id"], row["peer_id"])


# -- preview ---------------------------------------------------------------------------------------
async def preview(pool: asyncpg.Pool, subject: str, node_id: uuid.UUID) -> dict[str, Any]:
    """Strictly read-only: what a trigger would touch now."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await authz.require_on_node(conn, subject, "node-operate", node_id)
        target = await _load_target(conn, node_id)
        own = await psk.live_psk_reference(conn, node_id)
        # One edge per other anchored peer: re-keying this Node's PSK re-keys each derived edge PSK.
        rows = await conn.fetch(
            """SELECT p.node_id, k.kid, k.wrap_key_version
                 FROM peers p LEFT JOIN node_psks k ON k.node_id = p.node_id AND k.retired_at IS NULL
                WHERE p.domain_id = $1 AND p.node_id <> $2
                ORDER BY p.node_id""",
            target.domain_id, node_id,
        )
        pending = await conn.fetchval(
            "SELECT 1 FROM key_rotations WHERE node_id = $1 AND status = 'pending'", node_id
        )
    edges = []
    for row in rows:
        # The "before" reference of the PSK the rotation re-issues (the receipt gives the "after").
        kid, version = own if own else (row["kid"], row["wrap_key_version"])
        if kid is None:
            continue
        edges.append({"peer_node_id": str(row["node_id"]), "current_kid": kid, "current_wrap_key_version": version})
    return {
        "node_id": str(node_id),
        "peer_id": str(target.peer_id),
        "affected_peer_count": len(edges),
        "affected_edges": edges,
        "already_pending": pending is not None,
        "estimated_duration_seconds": rules.estimate_duration_seconds(len(edges)),
    }


# -- trigger ---------------------------------------------------------------------------------------
async def _insert_pending(
    conn: asyncpg.Connection, runtime: Runtime, target: _Target, requested_by: str
) -> tuple[uuid.UUID, bool]:
    """(rotation id, already_pending). Records the pending row and its `rotate_keys` event, or
    surfaces the row already pending. Call inside a transaction."""
    # A completion can flip the conflicting row between our INSERT and SELECT (each statement sees
    # its own snapshot); then there is no pending row and the next INSERT succeeds.
    for _ in range(5):
        rotation_id = await conn.fetchval(
            """INSERT INTO key_rotations (id, node_id, peer_id, status, requested_by, requested_at)
               VALUES ($1, $2, $3, 'pending', $4, $5)
               ON CONFLICT (node_id) WHERE status = 'pending' DO NOTHING
               RETURNING id""",
            uuid7(), target.node_id, target.peer_id, requested_by, utcnow(),
        )
        if rotation_id is not None:
            await events.append(
                conn, runtime.signing, target.domain_id, ROTATE_KEYS_EVENT,
                {"node_id": str(target.node_id), "rotation_id": str(rotation_id)},
                target_node_id=target.node_id,
            )
            return rotation_id, False
        existing = await conn.fetchval(
            "SELECT id FROM key_rotations WHERE node_id = $1 AND status = 'pending'", target.node_id
        )
        if existing is not None:
            return existing, True
    raise ProblemError(503, "datastore_unavailable", "could not record the rotation; retry")


async def trigger(runtime: Runtime, subject: str, node_id: uuid.UUID) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        await authz.require_on_node(conn, subject, "node-operate", node_id)
        async with conn.transaction():
            target = await _load_target(conn, node_id)
            rotation_id, already_pending = await _insert_pending(conn, runtime, target, subject)
    return {"rotation_id": str(rotation_id), "peer_id": str(target.peer_id), "already_pending": already_pending}


_DUE_SQL = """
SELECT n.id AS node_id, n.domain_id, p.id AS peer_id
  FROM domains d
  JOIN nodes n ON n.domain_id = d.id
  JOIN peers p ON p.node_id = n.id
 WHERE d.max_key_age_s IS NOT NULL AND d.max_key_age_s > 0
   AND n.public_key_set_at <= now() - d.max_key_age_s * interval '1 second'
   AND NOT EXISTS (SELECT 1 FROM key_rotations r WHERE r.node_id = n.id AND r.status = 'pending')
 ORDER BY n.public_key_set_at
 LIMIT $1
"""


async def trigger_due(runtime: Runtime, batch: int = 500) -> int:
    """Unattended renewal: one rotation per Node whose key is older than its Domain's max key age.
    Several workers may run this at once: the unique index lets exactly one insert each row, and
    only the inserter emits the event. Returns the number of rotations started."""
    started = 0
    async with runtime.pool.acquire() as conn:
        for row in await conn.fetch(_DUE_SQL, batch):
            # One short transaction per Node: appending an event holds its Domain's event-log lock
            # until commit, so a large batch in one transaction would stall that Domain's events.
            target = _Target(row["node_id"], row["domain_id"], row["peer_id"])
            try:
                async with conn.transaction():
                    _, already = await _insert_pending(conn, runtime, target, rules.KEY_AGE_REQUESTER)
            except asyncpg.ForeignKeyViolationError:
                continue  # the Node was deleted since the sweep found it
            started += not already
    return started


# -- completion ------------------------------------------------------------------------------------
async def complete(runtime: Runtime, node_id: uuid.UUID, new_public_key: bytes) -> rules.Receipt:
    """The Node's half: in one transaction install its new public key, re-issue its per-node PSK,
    flip the pending rotation to completed and tell every other peer."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        pending = await conn.fetchrow(
            "SELECT id FROM key_rotations WHERE node_id = $1 AND status = 'pending' FOR UPDATE", node_id
        )
        last = None
        if pending is None:
            last = await conn.fetchrow(
                """SELECT id, new_public_key, kid, wrap_key_version FROM key_rotations
                    WHERE node_id = $1 AND status = 'completed'
                    ORDER BY completed_at DESC, id DESC LIMIT 1""",
                node_id,
            )
        node = await conn.fetchrow(
            """SELECT n.id, n.domain_id, n.mesh_ip, n.public_key, p.id AS peer_id,
                      CASE WHEN p.endpoint_stale THEN NULL ELSE p.endpoint END AS endpoint  -- as state shows it
                 FROM nodes n LEFT JOIN peers p ON p.node_id = n.id
                WHERE n.id = $1 FOR NO KEY UPDATE OF n""",
            node_id,
        )
        if node is None:  # deleted between authentication and now
            raise ProblemError(404, "keys_rotate_peer_not_found", "this node has no live mesh peer")
        state = rules.CompletionState(
            has_live_peer=node["peer_id"] is not None,
            pending_rotation_id=pending["id"] if pending else None,
            current_public_key=bytes(node["public_key"]),
            last_completed_key=bytes(last["new_public_key"]) if last and last["new_public_key"] else None,
            last_completed_receipt=rules.Receipt(last["id"], last["kid"], last["wrap_key_version"]) if last else None,
        )
        decision = rules.decide_completion(state, new_public_key)
        if isinstance(decision, rules.Receipt):
            return decision
        rotation_id = decision
        now = utcnow()
        await conn.execute(
            "UPDATE nodes SET public_key = $2, public_key_set_at = $3, updated_at = $3 WHERE id = $1",
            node_id, new_public_key, now,
        )
        kid, wrap_key_version = await psk.issue_node_psk(conn, runtime.keyring, node_id)
        await conn.execute(
            """UPDATE key_rotations SET status = 'completed', completed_at = $2, new_public_key = $3,
                      kid = $4, wrap_key_version = $5
                WHERE id = $1""",
            rotation_id, now, new_public_key, kid, wrap_key_version,
        )
        peer = psk.peer_object({"node_id": node_id, "mesh_ip": node["mesh_ip"], "public_key": new_public_key,
                                "endpoint": node["endpoint"]})
        await events.append(conn, runtime.signing, node["domain_id"], PEER_KEY_ROTATED_EVENT, peer,
                            exclude_node_id=node_id)
    return rules.Receipt(rotation_id, kid, wrap_key_version)


# -- history ---------------------------------------------------------------------------------------
def _history_item(row: asyncpg.Record) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": str(row["id"]),
        "node_id": str(row["node_id"]),
        "peer_id": str(row["peer_id"]),
        "status": row["status"],
        "requested_by": row["requested_by"],
        "requested_at": rfc3339(row["requested_at"]),
    }
    if row["status"] == rules.COMPLETED:
        item["completed_at"] = rfc3339(row["completed_at"])
        item["new_public_key"] = base64.b64encode(bytes(row["new_public_key"])).decode()
        item["kid"] = row["kid"]
        item["wrap_key_version"] = row["wrap_key_version"]
    return item


async def history(
    runtime: Runtime, subject: str, node_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A Node's rotations, newest first, cursor-paginated."""
    listing = f"{_HISTORY_LISTING}:{node_id}"
    keyset = decode_cursor(runtime.keyring, subject, listing, cursor)
    async with runtime.pool.acquire() as conn:
        await authz.require_on_node(conn, subject, "node-view", node_id)
        if not await conn.fetchval("SELECT 1 FROM nodes WHERE id = $1", node_id):
            raise _not_found()
        after_at = after_id = None
        if keyset:
            after_at, after_id = parse_rfc3339(keyset[0]), uuid.UUID(keyset[1])
        rows = await conn.fetch(
            """SELECT id, node_id, peer_id, status, requested_by, requested_at, completed_at,
                      new_public_key, kid, wrap_key_version
                 FROM key_rotations
                WHERE node_id = $1 AND ($2::timestamptz IS NULL OR (requested_at, id) < ($2, $3))
                ORDER BY requested_at DESC, id DESC
                LIMIT $4""",
            node_id, after_at, after_id, limit + 1,
        )
    items = [_history_item(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(runtime.keyring, subject, listing, [rfc3339(last["requested_at"]), str(last["id"])])
    return {"items": items, "next_cursor": next_cursor}
