"""A Peer's underlay endpoint: reports from its Node, and the sweeper that tombstones endpoints
not refreshed before `stale_after`. Peers learn changes through `peer_endpoint_changed`, sent only
when the endpoint changed or came back from stale (identical refreshes only bump freshness)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from plexsphere.db import peers as peers_db
from plexsphere.domain import nodes as rules
from plexsphere.domain.errors import ProblemError
from plexsphere.services import events, psk, relays
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import rfc3339

_REPORT_SQL = """
WITH prev AS (SELECT node_id, endpoint, endpoint_stale, nat_type FROM peers WHERE node_id = $1 FOR UPDATE)
UPDATE peers p
   SET endpoint = $2, nat_type = $3, endpoint_reported_at = $4, endpoint_stale_after = $5, endpoint_stale = false
  FROM prev
 WHERE p.node_id = prev.node_id
RETURNING p.domain_id, prev.endpoint AS old_endpoint, prev.endpoint_stale AS was_stale, prev.nat_type AS old_nat_type
"""


async def report_endpoint(
    pool: asyncpg.Pool, signing: SigningKeys, node_id: uuid.UUID, domain_id: uuid.UUID, body: Any, now: datetime,
) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        context = await conn.fetchrow(
            """SELECT d.endpoint_ttl_s, EXISTS (SELECT 1 FROM peers WHERE node_id = $2) AS anchored
                 FROM domains d WHERE d.id = $1""",
            domain_id, node_id,
        )
        report = rules.validate_endpoint(body, now, context["endpoint_ttl_s"])
        if not context["anchored"]:
            raise ProblemError(404, "endpoint_peer_not_found", "no live Peer is registered for the addressed Node",
                               title="Peer Not Found")
        stale_after = now + timedelta(seconds=context["endpoint_ttl_s"])
        row = await conn.fetchrow(_REPORT_SQL, node_id, report.endpoint, report.nat_type, report.reported_at,
                                  stale_after)
        if row is None:  # deleted between the check and the update
            raise ProblemError(410, "endpoint_peer_gone", "the addressed Peer was deregistered before the "
                               "observation could be recorded", title="Peer Gone")
        # A NAT type change alone is news too: it decides the Peer's fallback_endpoint in state
        # pulls, and the peer lists (services/peer_list.py) learn every change from the event log.
        if row["was_stale"] or row["old_endpoint"] != report.endpoint or row["old_nat_type"] != report.nat_type:
            peer = psk.peer_object(await peers_db.peer_row(conn, node_id))
            peer["nat_type"] = report.nat_type  # additive (DECISIONS 7); agents ignore it
            await events.append(conn, signing, row["domain_id"], "peer_endpoint_changed", peer,
                                exclude_node_id=node_id)
            if row["old_endpoint"] != report.endpoint and await relays.is_relaying(conn, node_id):
                await relays.bridge_changed(conn, signing, row["domain_id"], node_id)  # fallbacks moved
    return {"accepted_at": rfc3339(now), "stale_after": rfc3339(stale_after)}


_EXPIRE_SQL = """
UPDATE peers p SET endpoint_stale = true
  FROM nodes n
 WHERE n.id = p.node_id AND p.endpoint IS NOT NULL AND NOT p.endpoint_stale AND p.endpoint_stale_after <= now()
RETURNING p.domain_id, n.id AS node_id, n.mesh_ip, n.public_key
"""


async def expire_endpoints(conn: asyncpg.Connection, signing: SigningKeys) -> int:
    """Tombstones endpoints past `stale_after`: one `peer_endpoint_changed` without `endpoint` per
    expired Peer, in the same transaction as the flag. Call inside a transaction."""
    rows = await conn.fetch(_EXPIRE_SQL)
    # One statement for all tombstones: a mass expiry (after a partition) must not hold each
    # Domain's event-log lock across N round trips.
    await events.append_many(conn, signing, [
        events.PendingEvent(row["domain_id"], "peer_endpoint_changed",
                            psk.peer_object({**dict(row), "endpoint": None}), exclude_node_id=row["node_id"])
        for row in rows
    ])
    return len(rows)
