"""Permission checks: one query per check, whatever the number of tuples (the ancestor chain is
walked by a recursive CTE over `parent` tuples and the caller's relations on it come back in the
same round trip)."""

from __future__ import annotations

import asyncpg

from plexsphere.domain import authz
from plexsphere.domain.errors import PermissionDeniedError
from plexsphere.ids import uuid7

_CHECK_SQL = """
WITH RECURSIVE chain(object_type, object_id, depth) AS (
    SELECT $1::text, $2::text, 0
  UNION ALL
    SELECT t.subject_type, t.subject_id, c.depth + 1
      FROM chain c
      JOIN relation_tuples t
        ON t.object_type = c.object_type AND t.object_id = c.object_id AND t.relation = 'parent'
     WHERE c.depth < 6
)
SELECT c.object_type, c.object_id, c.depth,
       coalesce(array_agg(t.relation) FILTER (WHERE t.relation IS NOT NULL), '{}') AS relations
  FROM chain c
  LEFT JOIN relation_tuples t
    ON t.object_type = c.object_type AND t.object_id = c.object_id
   AND t.subject_type = $3 AND t.subject_id = $4 AND t.subject_relation = ''
   AND t.relation <> 'parent'
 GROUP BY c.object_type, c.object_id, c.depth
 ORDER BY c.depth
"""


async def check(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject: str,
    permission: str,
    resource: str,
) -> authz.Decision:
    subject_ref = authz.parse_ref(subject)
    resource_ref = authz.parse_ref(resource)
    if subject_ref is None or resource_ref is None:
        return authz.Decision(False, (), "out_of_scope")
    object_type, object_id = resource_ref
    wanted = authz.canonical_permission(object_type, permission)
    if wanted is None:
        return authz.Decision(False, (), "insufficient_relation")
    rows = await conn.fetch(_CHECK_SQL, object_type, object_id, subject_ref[0], subject_ref[1])
    # The platform is the implicit root: a domain's chain ends there even before its parent tuple.
    chain = [(r["object_type"], r["object_id"]) for r in rows]
    direct = {(r["object_type"], r["object_id"]): set(r["relations"]) for r in rows}
    if object_type == "platform" and not rows:
        chain = [resource_ref]
    return authz.evaluate(wanted, chain, direct)


async def require(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject: str,
    permission: str,
    resource: str,
) -> authz.Decision:
    """Raises the contract's PermissionDenied 403 unless `subject` holds `permission` on `resource`.
    Call it before looking the resource up, so a denial never reveals whether it exists."""
    decision = await check(conn, subject, permission, resource)
    if not decision.allowed:
        raise PermissionDeniedError(
            reason=decision.reason if decision.reason != "granted" else "insufficient_relation",
            relation_path=list(decision.relation_path),
            correlation_id=f"rebac-{uuid7()}",
        )
    return decision
