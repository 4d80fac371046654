"""The authorization schema (Zanzibar style) and its pure evaluation.

Objects form a fixed hierarchy through `parent` tuples written by the mirror:
    node ─┐
          ├─parent→ project ─parent→ domain ─parent→ platform:plexsphere
resource ─┘
A permission on an object is granted by one of its own relations, or by a named permission on its
parent. `evaluate` takes the object's ancestor chain and the caller's direct relations on it
(both fetched in one query by services/authz.py) and needs no further I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

PLATFORM_ID = "plexsphere"
PARENT = "parent"

OBJECT_TYPES = ("platform", "domain", "project", "node", "resource")
SUBJECT_TYPES = ("user", "service-identity", "node")
# Each object type's parent type: the hierarchy is fixed, which lets lists compile a permission into
# a fixed SQL predicate (services/authz.visible_sql).
PARENT_TYPE: dict[str, str] = {"domain": "platform", "project": "domain", "node": "project", "resource": "project"}
RELATIONS: dict[str, tuple[str, ...]] = {
    "platform": ("admin", "viewer"),
    "domain": ("admin", "member", "viewer", "auditor", PARENT),
    "project": ("admin", "member", "viewer", PARENT),
    "node": ("agent", PARENT),
    "resource": (PARENT,),
}


@dataclass(frozen=True)
class Rule:
    relations: frozenset[str]  # direct relations on the object that grant the permission
    parent_permission: str | None  # or this permission on the parent object


def _rule(relations: tuple[str, ...], parent: str | None = None) -> Rule:
    return Rule(frozenset(relations), parent)


SCHEMA: dict[str, dict[str, Rule]] = {
    "platform": {
        "platform-admin": _rule(("admin",)),
        "platform-view": _rule(("admin", "viewer")),
    },
    "domain": {
        "domain-admin": _rule(("admin",), "platform-admin"),
        "domain-edit": _rule(("admin", "member"), "platform-admin"),
        "domain-view": _rule(("admin", "member", "viewer", "auditor"), "platform-view"),
        "domain-audit": _rule(("admin", "auditor"), "platform-admin"),
    },
    "project": {
        "project-admin": _rule(("admin",), "domain-admin"),
        "project-edit": _rule(("admin", "member"), "domain-edit"),
        "project-view": _rule(("admin", "member", "viewer"), "domain-view"),
    },
    "node": {
        "node-operate": _rule((), "project-admin"),
        "node-agent": _rule(("agent",), "project-admin"),
        "node-view": _rule(("agent",), "project-view"),
    },
    "resource": {
        "resource-admin": _rule((), "project-admin"),
        "resource-edit": _rule((), "project-edit"),
        "resource-view": _rule((), "project-view"),
    },
}

# Names the contract uses for the same permissions.
ALIASES: dict[tuple[str, str], str] = {}
for _type, _prefix in (("platform", "platform"), ("domain", "domain"), ("project", "project"),
                       ("node", "node"), ("resource", "resource")):
    ALIASES[(_type, "read")] = f"{_prefix}-view"
    ALIASES[(_type, "view")] = f"{_prefix}-view"
    ALIASES[(_type, "manage")] = f"{_prefix}-admin" if _type != "node" else "node-operate"
ALIASES[("project", "observe")] = "project-view"
ALIASES[("project", "deploy")] = "project-edit"
ALIASES[("project", "operator")] = "project-edit"
ALIASES[("project", "maintainer")] = "project-edit"
ALIASES[("resource", "observe")] = "resource-view"
ALIASES[("resource", "deploy")] = "resource-edit"
ALIASES[("node", "read")] = "node-view"


def parse_ref(text: str) -> tuple[str, str] | None:
    """`type:id` → (type, id), or None."""
    if not isinstance(text, str) or ":" not in text:
        return None
    object_type, _, object_id = text.partition(":")
    if not object_type or not object_id or "#" in object_id or " " in text:
        return None
    return object_type, object_id


def canonical_permission(object_type: str, name: str) -> str | None:
    """The schema permission `name` means on `object_type` (a permission, an alias, or a bare
    relation checked directly), or None when it means nothing there."""
    if name in SCHEMA.get(object_type, {}):
        return name
    if (object_type, name) in ALIASES:
        return ALIASES[(object_type, name)]
    if name in RELATIONS.get(object_type, ()) and name != PARENT:
        return "relation:" + name
    return None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    relation_path: tuple[str, ...]
    reason: str  # granted | out_of_scope | insufficient_relation


def evaluate(
    permission: str,
    chain: list[tuple[str, str]],
    direct: dict[tuple[str, str], set[str]],
) -> Decision:
    """`chain` is [(type, id)] from the object up through its parents; `direct` maps an object of
    the chain to the caller's relations on it. Pure."""
    if not chain:
        return Decision(False, (), "out_of_scope")
    path: list[str] = []
    wanted = permission
    for depth, (object_type, object_id) in enumerate(chain):
        relations = direct.get((object_type, object_id), set())
        if wanted.startswith("relation:"):
            ok = wanted.split(":", 1)[1] in relations
            return Decision(ok, (f"{object_type}:{object_id}#{wanted.split(':', 1)[1]}",) if ok else (),
                            "granted" if ok else ("insufficient_relation" if relations else "out_of_scope"))
        rule = SCHEMA.get(object_type, {}).get(wanted)
        if rule is None:
            break
        granted = sorted(rule.relations & relations)
        if granted:
            path.append(f"{object_type}:{object_id}#{granted[0]}")
            return Decision(True, tuple(path), "granted")
        if rule.parent_permission is None or depth + 1 >= len(chain):
            break
        path.append(f"{object_type}:{object_id}#{PARENT}")
        wanted = rule.parent_permission
    any_binding = any(direct.values())
    return Decision(False, (), "insufficient_relation" if any_binding else "out_of_scope")


def granting_relations(permission: str, chain_types: list[str]) -> dict[int, frozenset[str]]:
    """For each depth of an ancestor chain (given by its object types), the direct relations that
    grant `permission` on the chain's first object. Pure; used by lookup-subjects."""
    out: dict[int, frozenset[str]] = {}
    if permission.startswith("relation:"):
        return {0: frozenset({permission.split(":", 1)[1]})}
    wanted: str | None = permission
    for depth, object_type in enumerate(chain_types):
        rule = SCHEMA.get(object_type, {}).get(wanted or "")
        if rule is None:
            break
        out[depth] = rule.relations
        wanted = rule.parent_permission
        if wanted is None:
            break
    return out


# -- tuple validation (relation-tuples API) ---------------------------------------------------------

# Subject ids and object ids are UUIDs for every type except the platform singleton.
API_OBJECT_TYPES = ("domain", "project", "node", "resource")


@dataclass(frozen=True)
class TupleSpec:
    subject_type: str
    subject_id: str
    relation: str
    object_type: str
    object_id: str
    caveat_context: dict | None

    @property
    def subject(self) -> str:
        return f"{self.subject_type}:{self.subject_id}"

    @property
    def resource(self) -> str:
        return f"{self.object_type}:{self.object_id}"


def canonical_uuid(text: str) -> str | None:
    try:
        value = uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None
    return str(value) if value.int else None


def parse_tuple(body: dict) -> TupleSpec | str:
    """A validated tuple written through the API, or the reason it is refused. `parent` tuples are
    the mirror's: the hierarchy must stay a tree the checks can walk."""
    subject, relation, resource = body.get("subject"), body.get("relation"), body.get("resource")
    if not all(isinstance(v, str) and v for v in (subject, relation, resource)):
        return "subject, relation and resource are required strings"
    subject_ref, resource_ref = parse_ref(subject), parse_ref(resource)
    if subject_ref is None or subject_ref[0] not in SUBJECT_TYPES:
        return f"subject must be <type>:<uuid> with type one of {', '.join(SUBJECT_TYPES)}"
    if resource_ref is None or resource_ref[0] not in API_OBJECT_TYPES:
        return f"resource must be <type>:<uuid> with type one of {', '.join(API_OBJECT_TYPES)}"
    subject_id, object_id = canonical_uuid(subject_ref[1]), canonical_uuid(resource_ref[1])
    if subject_id is None or object_id is None:
        return "subject and resource ids must be UUIDs"
    object_type = resource_ref[0]
    if relation == PARENT or relation not in RELATIONS[object_type]:
        allowed = [r for r in RELATIONS[object_type] if r != PARENT]
        return f"relation {relation!r} is not defined on {object_type} (allowed: {', '.join(allowed) or 'none'})"
    if body.get("caveat_name"):
        return "caveats are not supported by this authorizer"
    context = body.get("caveat_context")
    if context is not None and not isinstance(context, dict):
        return "caveat_context must be an object"
    return TupleSpec(subject_ref[0], subject_id, relation, object_type, object_id, context)
