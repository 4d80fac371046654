"""Permission checks and lookups over the relation tuples in PostgreSQL.

- `check`: one query per check, whatever the number of tuples: the ancestor chain is walked by a
  recursive CTE over `parent` tuples (each step an index probe) and the caller's relations on the
  chain come back in the same round trip.
- `visible_sql`: the same rules compiled into a SQL predicate, so a list filters its rows per
  permission inside its one query (no N+1). The hierarchy is fixed (domain.authz.PARENT_TYPE), so
  the predicate is a fixed nest of index-backed EXISTS probes.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from plexsphere.domain import authz
from plexsphere.domain.errors import PermissionDeniedError, ProblemError, not_found
from plexsphere.ids import parse_uuid, uuid7
from plexsphere.timeutil import parse_rfc3339, rfc3339

# The object and its ancestors. A Domain's parent is always the platform (the root of the fixed
# hierarchy), so platform admins reach a Domain the moment it commits; below the Domain, parents come
# from mirrored tuples.
_CHAIN_CTE = """
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
"""

_CHECK_SQL = _CHAIN_CTE + """
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


# What a permission on a Node means at the platform root. A Node reaches the platform only through
# its mirrored parent tuple, which does not exist yet right after register nor any more after a
# delete (nor ever for an unknown id); platform-wide callers are not cut off in those windows and
# see the 404, everyone else still gets 403 first.
_PLATFORM_EQUIVALENT = {"node-view": "platform-view", "node-operate": "platform-admin", "node-agent": "platform-admin"}


async def require_on_node(conn: asyncpg.Connection | asyncpg.Pool, subject: str, permission: str,
                          node_id: uuid.UUID, denied_code: str = "permission_denied") -> None:
    """`permission` on node:<id>, checked before the Node is looked up. The node routes' contract
    names one reason for their 403s (rotation.md §2), whatever the caller lacks."""
    decision = await check(conn, subject, permission, f"node:{node_id}")
    if decision.allowed:
        return
    if (await check(conn, subject, _PLATFORM_EQUIVALENT[permission], f"platform:{authz.PLATFORM_ID}")).allowed:
        return
    raise PermissionDeniedError(
        reason="insufficient_relation",
        relation_path=list(decision.relation_path),
        code=denied_code,
        correlation_id=f"rebac-{uuid7()}",
    )


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


_CHAIN_SUBJECTS_SQL = _CHAIN_CTE + """
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


# -- the ReBAC API: check, lookups, project-scoped relation tuples ---------------------------------------

_VIEW = {"platform": "platform-view", "domain": "domain-view", "project": "project-view", "node": "node-view",
         "resource": "resource-view"}


def _invalid(code: str, detail: str) -> ProblemError:
    return ProblemError(400, code, detail)


def _check_ref(text: Any, what: str, code: str) -> tuple[str, str]:
    ref = authz.parse_ref(text) if isinstance(text, str) else None
    if ref is None:
        raise _invalid(code, f"{what} must be <type>:<id>")
    return ref


async def api_check(pool: asyncpg.Pool, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/authz/check: denials are answers (200), not errors. A caller asking about another
    subject learns only what it could see itself: without view on the resource the answer is denied."""
    for key in ("subject", "relation", "resource"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise _invalid("invalid_check_request", f"{key} is required")
    _check_ref(body["subject"], "subject", "invalid_check_request")
    object_type, _ = _check_ref(body["resource"], "resource", "invalid_check_request")
    if object_type not in authz.OBJECT_TYPES:
        raise _invalid("invalid_check_request", f"unknown object type {object_type!r}")
    if authz.canonical_permission(object_type, body["relation"]) is None:
        raise _invalid("invalid_check_request", f"{body['relation']!r} is neither a permission nor a relation of "
                       f"{object_type}")
    cid = correlation_id()
    if body["subject"] != caller and not (await check(pool, caller, _VIEW[object_type], body["resource"])).allowed:
        return {"decision": "denied", "reason": "out_of_scope", "correlation_id": cid}
    decision = await check(pool, body["subject"], body["relation"], body["resource"])
    if decision.allowed:
        return {"decision": "allowed", "relation_path": list(decision.relation_path), "correlation_id": cid}
    return {"decision": "denied", "reason": decision.reason, "correlation_id": cid}


async def api_lookup_resources(pool: asyncpg.Pool, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    code = "invalid_lookup_request"
    for key in ("subject", "relation", "resource_type"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise _invalid(code, f"{key} is required")
    _check_ref(body["subject"], "subject", code)
    resource_type = body["resource_type"]
    if resource_type not in authz.OBJECT_TYPES:
        raise _invalid(code, f"unknown resource_type {resource_type!r}")
    if authz.canonical_permission(resource_type, body["relation"]) is None:
        raise _invalid(code, f"{body['relation']!r} is neither a permission nor a relation of {resource_type}")
    items = await lookup_resources(pool, body["subject"], body["relation"], resource_type)
    if items and body["subject"] != caller:
        visible = set(await lookup_resources(pool, caller, _VIEW[resource_type], resource_type))
        items = [i for i in items if i in visible]
    return {"items": items, "correlation_id": correlation_id()}


async def api_lookup_subjects(pool: asyncpg.Pool, caller: str, body: dict[str, Any]) -> dict[str, Any]:
    code = "invalid_lookup_request"
    for key in ("subject_type", "relation", "resource"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise _invalid(code, f"{key} is required")
    if body["subject_type"] not in authz.SUBJECT_TYPES:
        raise _invalid(code, f"subject_type must be one of {', '.join(authz.SUBJECT_TYPES)}")
    object_type, _ = _check_ref(body["resource"], "resource", code)
    if object_type not in authz.OBJECT_TYPES:
        raise _invalid(code, f"unknown object type {object_type!r}")
    if authz.canonical_permission(object_type, body["relation"]) is None:
        raise _invalid(code, f"{body['relation']!r} is neither a permission nor a relation of {object_type}")
    items: list[str] = []
    if (await check(pool, caller, _VIEW[object_type], body["resource"])).allowed:
        items = await lookup_subjects(pool, body["subject_type"], body["relation"], body["resource"])
    return {"items": items, "correlation_id": correlation_id()}


_TUPLE_COLUMNS = """id, subject_type, subject_id, relation, object_type, object_id, caveat_context, project_id,
                    source, created_at"""


def tuple_to_wire(row: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "subject": f"{row['subject_type']}:{row['subject_id']}",
        "relation": row["relation"],
        "resource": f"{row['object_type']}:{row['object_id']}",
        "created_at": rfc3339(row["created_at"]),
    }
    if row["caveat_context"] is not None:
        out["caveat_context"] = row["caveat_context"]
    return out


def parse_project_param(value: str | None) -> uuid.UUID:
    project_id = parse_uuid(value) if value else None
    if project_id is None:
        raise _invalid("invalid_project_id", "project_id is required and must be a UUID")
    return project_id


def parse_tuple_id(text: str) -> uuid.UUID:
    tuple_id = parse_uuid(text)
    if tuple_id is None:
        raise _invalid("invalid_relation_tuple_id", "relation tuple id must be a non-nil UUID")
    return tuple_id


async def _scoped_spec(conn: asyncpg.Connection, caller: str, project_id: uuid.UUID, domain_id: uuid.UUID,
                       body: dict[str, Any]) -> authz.TupleSpec:
    """Validates a tuple against the schema and the Project it is filed under: its object must be
    the Project, one of its Nodes or Resources, or (for a domain admin) the Project's Domain."""
    spec = authz.parse_tuple(body)
    if isinstance(spec, str):
        raise _invalid("invalid_relation_tuple", spec)
    outside = _invalid("invalid_relation_tuple", f"{spec.resource} is not part of project {project_id}")
    if spec.object_type == "project":
        if spec.object_id != str(project_id):
            raise outside
    elif spec.object_type == "domain":
        if spec.object_id != str(domain_id):
            raise outside
        await require(conn, caller, "domain-admin", spec.resource)
    else:
        table = "nodes" if spec.object_type == "node" else "resources"
        owner = await conn.fetchval(f"SELECT project_id FROM {table} WHERE id = $1", uuid.UUID(spec.object_id))
        if owner != project_id:
            raise outside
    return spec


async def _project_domain(conn: asyncpg.Connection | asyncpg.Pool, project_id: uuid.UUID) -> uuid.UUID:
    domain_id = await conn.fetchval("SELECT domain_id FROM projects WHERE id = $1", project_id)
    if domain_id is None:
        raise not_found("project_not_found", "Project")
    return domain_id


async def _insert_tuple(conn: asyncpg.Connection, tuple_id: uuid.UUID, spec: authz.TupleSpec,
                        project_id: uuid.UUID) -> asyncpg.Record:
    """Idempotent: writing a tuple that exists returns the existing row."""
    row = await conn.fetchrow(
        f"""INSERT INTO relation_tuples (id, object_type, object_id, relation, subject_type, subject_id,
                                         caveat_context, project_id, source, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, 'api', now())
            ON CONFLICT (object_type, object_id, relation, subject_type, subject_id, subject_relation) DO NOTHING
            RETURNING {_TUPLE_COLUMNS}""",
        tuple_id, spec.object_type, spec.object_id, spec.relation, spec.subject_type, spec.subject_id,
        spec.caveat_context, project_id,
    )
    if row is None:
        row = await conn.fetchrow(
            f"""SELECT {_TUPLE_COLUMNS} FROM relation_tuples
                 WHERE object_type = $1 AND object_id = $2 AND relation = $3 AND subject_type = $4
                   AND subject_id = $5 AND subject_relation = ''""",
            spec.object_type, spec.object_id, spec.relation, spec.subject_type, spec.subject_id,
        )
    return row


async def create_tuple(pool: asyncpg.Pool, caller: str, project_id: uuid.UUID, body: dict[str, Any]
                       ) -> dict[str, Any]:
    await require(pool, caller, "project-admin", f"project:{project_id}")
    async with pool.acquire() as conn, conn.transaction():
        domain_id = await _project_domain(conn, project_id)
        spec = await _scoped_spec(conn, caller, project_id, domain_id, body)
        row = await _insert_tuple(conn, uuid7(), spec, project_id)
    return tuple_to_wire(row)


async def list_tuples(pool: asyncpg.Pool, caller: str, project_id: uuid.UUID, after: list[Any] | None, limit: int
                      ) -> tuple[list[dict[str, Any]], list[str] | None]:
    await require(pool, caller, "project-view", f"project:{project_id}")
    after_at = after_id = None
    if after is not None:
        after_at = parse_rfc3339(after[0]) if len(after) == 2 and isinstance(after[0], str) else None
        after_id = parse_uuid(after[1]) if after_at and isinstance(after[1], str) else None
        if after_id is None:
            raise _invalid("invalid_cursor", "cursor is malformed")
    else:
        await _project_domain(pool, project_id)
    rows = await pool.fetch(
        f"""SELECT {_TUPLE_COLUMNS} FROM relation_tuples
             WHERE project_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
             ORDER BY created_at, id LIMIT $4""",
        project_id, after_at, after_id, limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_after = [rfc3339(rows[-1]["created_at"]), str(rows[-1]["id"])] if more else None
    return [tuple_to_wire(r) for r in rows], next_after


async def _load_tuple_for_write(conn: asyncpg.Connection, caller: str, tuple_id: uuid.UUID) -> asyncpg.Record:
    """A tuple id names no parent object, so the gate runs on the tuple's Project once it is found:
    a tuple the caller cannot even see is reported as missing (no oracle), one it sees but may not
    manage is a 403."""
    row = await conn.fetchrow(f"SELECT {_TUPLE_COLUMNS} FROM relation_tuples WHERE id = $1 FOR UPDATE", tuple_id)
    missing = not_found("relation_tuple_not_found", "Relation tuple")
    if row is None or row["project_id"] is None:
        raise missing
    project = f"project:{row['project_id']}"
    if not (await check(conn, caller, "project-view", project)).allowed:
        raise missing
    await require(conn, caller, "project-admin", project)
    if row["relation"] == authz.PARENT:
        raise _invalid("invalid_relation_tuple", "parent tuples are maintained by the platform")
    return row


async def replace_tuple(pool: asyncpg.Pool, caller: str, tuple_id: uuid.UUID, body: dict[str, Any]
                        ) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        current = await _load_tuple_for_write(conn, caller, tuple_id)
        project_id = current["project_id"]
        spec = await _scoped_spec(conn, caller, project_id, await _project_domain(conn, project_id), body)
        # Delete-then-write in one transaction: no instant where both or neither grant holds.
        await conn.execute("DELETE FROM relation_tuples WHERE id = $1", tuple_id)
        row = await _insert_tuple(conn, tuple_id, spec, project_id)
    return tuple_to_wire(row)


async def delete_tuple(pool: asyncpg.Pool, caller: str, tuple_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _load_tuple_for_write(conn, caller, tuple_id)
        await conn.execute("DELETE FROM relation_tuples WHERE id = $1", tuple_id)
