"""Heartbeats and the reachability projection (DECISIONS 8).

A heartbeat is one statement (lock the Peer row, mark it healthy, answer whether a rotation is
pending). The sweeper degrades Peers with set-based UPDATEs whose target row expressions are
re-evaluated by PostgreSQL on a concurrent heartbeat, so a sweep never overwrites a fresher one and
several workers may sweep at once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from plexsphere.domain import nodes as rules
from plexsphere.domain import relays as relay_rules
from plexsphere.domain.errors import not_found
from plexsphere.domain.reachability import is_degraded
from plexsphere.services.nodes import reachability_object
from plexsphere.timeutil import rfc3339

_HEARTBEAT_SQL = """
WITH prev AS (SELECT node_id, reachability FROM peers WHERE node_id = $1 FOR UPDATE),
updated AS (
    UPDATE peers p
       SET last_heartbeat_at = $2, binary_version = $3, binary_checksum = $4, reachability = 'healthy',
           relayed_peers = CASE WHEN $5::text IS NULL THEN p.relayed_peers ELSE $5::text::jsonb END,
           reachability_changed_at = CASE WHEN prev.reachability = 'healthy' THEN p.reachability_changed_at ELSE $2 END
      FROM prev
     WHERE p.node_id = prev.node_id
    RETURNING prev.reachability AS previous
)
SELECT (SELECT previous FROM updated) AS previous,
       EXISTS (SELECT 1 FROM key_rotations WHERE node_id = $1 AND status = 'pending') AS rotate_keys
"""


async def record_heartbeat(pool: asyncpg.Pool, node_id: uuid.UUID, body: Any, now: datetime) -> dict[str, Any]:
    beat = rules.validate_heartbeat(body, now)
    # The edges the Node sends through a relay (the topology's `relayed` edges); absent = unchanged.
    relayed = relay_rules.parse_relayed_peers(beat.nat_summary)
    row = await pool.fetchrow(_HEARTBEAT_SQL, node_id, now, beat.binary_version, beat.binary_checksum,
                              orjson.dumps(relayed).decode() if relayed is not None else None)
    previous = row["previous"]
    return {
        "accepted_at": rfc3339(now),
        # Re-pull the state when the Node was not anchored yet or had dropped out of healthy: it may
        # have missed peer events meanwhile.
        "reconcile": previous is None or is_degraded(previous),
        "rotate_keys": bool(row["rotate_keys"]),
    }


async def get_reachability(pool: asyncpg.Pool, node_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow(
        """SELECT n.created_at, p.reachability, p.reachability_changed_at, p.last_heartbeat_at
             FROM nodes n LEFT JOIN peers p ON p.node_id = n.id WHERE n.id = $1""",
        node_id,
    )
    if row is None:
        raise not_found("node_not_found", "node")
    return reachability_object(row)


# Last sign of life: the latest heartbeat, else the anchoring.
_LAST_SEEN = "coalesce(p.last_heartbeat_at, p.anchored_at)"
_NEXT_STATE = f"""CASE WHEN {_LAST_SEEN} <= now() - d.unreachable_after_s * interval '1 second' THEN 'unreachable'
                      WHEN {_LAST_SEEN} <= now() - d.stale_after_s * interval '1 second' THEN 'stale'
                      ELSE 'healthy' END"""

_SWEEP_SQL = f"""
UPDATE peers p
   SET reachability = {_NEXT_STATE},
       reachability_changed_at = {_LAST_SEEN} + CASE WHEN {_NEXT_STATE} = 'unreachable'
                                                     THEN d.unreachable_after_s ELSE d.stale_after_s END
                                                * interval '1 second'
  FROM domains d
 WHERE d.id = p.domain_id
   AND p.reachability <> 'unreachable'
   AND {_NEXT_STATE} <> 'healthy'
   AND {_NEXT_STATE} <> p.reachability
"""


async def sweep(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Degrades every Peer past its Domain's thresholds; returns how many changed state. Only
    heartbeats make a Peer healthy again."""
    status = await conn.execute(_SWEEP_SQL)
    return int(status.split()[-1])
