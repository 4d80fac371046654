"""Permission checks and lookups over the relation tuples in PostgreSQL.

- `check`: one query per check, whatever the number of tuples: the ancestor chain is walked by a
  recursive CTE over `parent` tuples (each step an index probe) and the caller's relations on the
  chain come back in the same round trip.
- `visible_sql`: the same rules compiled into a SQL predicate, so a list filters its rows per
  permission inside its one query (no N+1). The hierarchy is fixed (domain.authz.PARENT_TYPE), so
  the predicate is a fixed nest of index-backed EXISTS probes.
"""

from __future__ import annotations

import asyncpg

from plexsphere.domain import authz
from plexsphere.domain.errors import PermissionDeniedError
from plexsphere.ids import uuid7

# A Domain's parent is always the platform (the root of the fixed hierarchy), so platform admins
# reach a Domain the moment it commits; below the Domain, parents come from mirrored tuples.
_CHECK_SQL = """
WITH RECURSIVE chain(object_type, object_id, depth) AS (
    SELECT $1::text, $2::text, 0
  UNION ALL
    SELECT up.object_type, up.object_id, c.depth + 1
      FROM chain c
     CROSS JOIN LATERAL (
            SELECT 'platform'::text AS object_type, 'plexsphere'::text AS object_id
             WHERE c.object_type = 'domain'
          UNION ALL
            SELECT t.subject_type, t.subject_id
              FROM relation_tuples t
             WHERE t.object_type = c.object_type AND t.object_id = c.object_id AND t.relation = 'parent'
               AND c.object_type NOT IN ('domain', 'platform')
           ) up
     WHERE c.depth < 4
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


def correlation_id() -> str:
    return f"rebac-{uuid7()}"


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
    if object_type == "platform" and object_id != authz.PLATFORM_ID:
        return authz.Decision(False, (), "out_of_scope")
    rows = await conn.fetch(_CHECK_SQL, object_type, object_id, subject_ref[0], subject_ref[1])
    chain = [(r["object_type"], r["object_id"]) for r in rows]
    direct = {(r["object_type"], r["object_id"]): set(r["relations"]) for r in rows}
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
            correlation_id=correlation_id(),
        )
    return decision


# -- per-row visibility -----------------------------------------------------------------------------


def visible_sql(object_type: str, permission: str, id_sql: str, subject_type_param: str,
                subject_id_param: str) -> str:
    """A SQL boolean expression: the subject (bound as the two given `$n` parameters) holds
    `permission` (a schema permission or alias) on the object of `object_type` whose id is the SQL
    expression `id_sql` (text). Only schema constants are inlined; ids travel as parameters."""
    wanted = authz.canonical_permission(object_type, permission)
    if wanted is None:
        return "false"
    return _visible(object_type, wanted, id_sql, subject_type_param, subject_id_param, 0)


def _literal_list(values: list[str]) -> str:
    for value in values:  # schema constants only; guard anyway
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"unexpected schema name {value!r}")
    return ", ".join(f"'{v}'" for v in values)


def _visible(object_type: str, permission: str, id_sql: str, st: str, si: str, depth: int) -> str:
    alias = f"_v{depth}"
    direct = (f"EXISTS (SELECT 1 FROM relation_tuples {alias}d WHERE {alias}d.object_type = '{object_type}'"
              f" AND {alias}d.object_id = {id_sql} AND {alias}d.relation IN ({{rels}})"
              f" AND {alias}d.subject_type = {st} AND {alias}d.subject_id = {si}"
              f" AND {alias}d.subject_relation = '')")
    if permission.startswith("relation:"):
        return direct.format(rels=_literal_list([permission.split(":", 1)[1]]))
    rule = authz.SCHEMA[object_type][permission]
    parts = []
    if rule.relations:
        parts.append(direct.format(rels=_literal_list(sorted(rule.relations))))
    if rule.parent_permission is not None:
        parent_type = authz.PARENT_TYPE[object_type]
        if parent_type == "platform":
            parts.append(_visible("platform", rule.parent_permission, f"'{authz.PLATFORM_ID}'", st, si, depth + 1))
        else:
            inner = _visible(parent_type, rule.parent_permission, f"{alias}p.subject_id", st, si, depth + 1)
            parts.append(f"EXISTS (SELECT 1 FROM relation_tuples {alias}p WHERE {alias}p.object_type = '{object_type}'"
                         f" AND {alias}p.object_id = {id_sql} AND {alias}p.relation = 'parent'"
                         f" AND {alias}p.subject_type = '{parent_type}' AND {inner})")
    return "(" + (" OR ".join(parts) if parts else "false") + ")"


# -- lookups ------------------------------------------------------------------------------------------

# Where the objects of each type live, for lookup-resources.
_OBJECT_TABLES = {"domain": "domains", "project": "projects", "node": "nodes", "resource": "resources"}
LOOKUP_CAP = 10_000


async def lookup_resources(conn: asyncpg.Connection | asyncpg.Pool, subject: str, permission: str,
                           resource_type: str) -> list[str]:
    subject_ref = authz.parse_ref(subject)
    if subject_ref is None:
        return []
    if resource_type == "platform":
        decision = await check(conn, subject, permission, f"platform:{authz.PLATFORM_ID}")
        return [f"platform:{authz.PLATFORM_ID}"] if decision.allowed else []
    table = _OBJECT_TABLES[resource_type]
    predicate = visible_sql(resource_type, permission, "o.id::text", "$1", "$2")
    rows = await conn.fetch(
        f"SELECT o.id::text AS id FROM {table} o WHERE {predicate} ORDER BY o.id LIMIT {LOOKUP_CAP}",
        subject_ref[0], subject_ref[1],
    )
    return [f"{resource_type}:{r['id']}" for r in rows]


_CHAIN_SUBJECTS_SQL = """
WITH RECURSIVE chain(object_type, object_id, depth) AS (
    SELECT $1::text, $2::text, 0
  UNION ALL
    SELECT up.object_type, up.object_id, c.depth + 1
      FROM chain c
     CROSS JOIN LATERAL (
            SELECT 'platform'::text AS object_type, 'plexsphere'::text AS object_id
             WHERE c.object_type = 'domain'
          UNION ALL
            SELECT t.subject_type, t.subject_id
              FROM relation_tuples t
             WHERE t.object_type = c.object_type AND t.object_id = c.object_id AND t.relation = 'parent'
               AND c.object_type NOT IN ('domain', 'platform')
           ) up
     WHERE c.depth < 4
)
SELECT c.depth, c.object_type, t.relation, t.subject_id
  FROM chain c
  LEFT JOIN relation_tuples t
    ON t.object_type = c.object_type AND t.object_id = c.object_id
   AND t.subject_type = $3 AND t.subject_relation = '' AND t.relation <> 'parent'
 ORDER BY c.depth, t.created_at
"""


async def lookup_subjects(conn: asyncpg.Connection | asyncpg.Pool, subject_type: str, permission: str,
                          resource: str) -> list[str]:
    """Subjects of `subject_type` holding `permission` on `resource`: one query fetches the chain
    and every binding of that subject type on it; the schema then picks the granting ones."""
    resource_ref = authz.parse_ref(resource)
    if resource_ref is None:
        return []
    object_type, object_id = resource_ref
    wanted = authz.canonical_permission(object_type, permission)
    if wanted is None:
        return []
    rows = await conn.fetch(_CHAIN_SUBJECTS_SQL, object_type, object_id, subject_type)
    granting = authz.granting_relations(wanted, [r["object_type"] for r in _distinct_levels(rows)])
    out: list[str] = []
    seen: set[str] = set()
    for row in rows:
        if row["relation"] is None:
            continue
        if row["relation"] in granting.get(row["depth"], frozenset()):
            ref = f"{subject_type}:{row['subject_id']}"
            if ref not in seen:
                seen.add(ref)
                out.append(ref)
    return out


def _distinct_levels(rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
    levels: dict[int, asyncpg.Record] = {}
    for row in rows:
        levels.setdefault(row["depth"], row)
    return [levels[d] for d in sorted(levels)]
