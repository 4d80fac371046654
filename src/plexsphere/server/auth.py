"""Who is calling. Operators present a bearer access token (`pxa_…`), an API token (`psk_…`), or
the `plexsphere_session` cookie (mutations then need CSRF); Nodes present their NSK bearer
(DECISIONS 1). Every lookup is one indexed query by HMAC digest — never a scan, never argon2 on
the request path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request

from plexsphere import crypto
from plexsphere.domain.errors import PermissionDeniedError, ProblemError, unauthenticated
from plexsphere.server.runtime import Runtime

ACCESS_PREFIX = "pxa_"
SESSION_PREFIX = "pxs_"
API_TOKEN_PREFIX = "psk_"
SESSION_COOKIE = "plexsphere_session"
CSRF_COOKIE = "plexsphere_csrf"
CSRF_HEADER = "x-plexsphere-csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class OperatorPrincipal:
    identity_id: uuid.UUID
    kind: str  # user | service-identity
    domain_id: uuid.UUID | None
    email: str | None
    credential: str  # access | session | api
    credential_id: uuid.UUID
    amr: tuple[str, ...] = ()
    csrf_digest: bytes | None = None  # sessions: the digest of the CSRF token minted with them

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.identity_id}"


@dataclass(frozen=True)
class NodePrincipal:
    node_id: uuid.UUID
    domain_id: uuid.UUID
    project_id: uuid.UUID
    env: str

    @property
    def subject(self) -> str:
        return f"node:{self.node_id}"


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def looks_like_nsk(token: str) -> bool:
    return token.startswith("nsk_") or (len(token) == 44 and token.endswith("="))


# -- operators ------------------------------------------------------------------------------------
_ACCESS_SQL = """
SELECT t.id AS credential_id, t.kind AS credential, t.amr, t.csrf_digest,
       i.id AS identity_id, i.kind, i.domain_id, i.email
  FROM access_tokens t JOIN identities i ON i.id = t.identity_id
 WHERE t.digest = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
"""

_API_SQL = """
SELECT t.id AS credential_id, 'api' AS credential, i.id AS identity_id, i.kind, i.domain_id, i.email,
       (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS stale_use
  FROM api_tokens t JOIN identities i ON i.id = t.identity_id
 WHERE t.revoked_at IS NULL AND t.expires_at > now()
   AND (t.digest = $1 OR (t.previous_digest = $1 AND t.previous_valid_until > now()))
"""


async def resolve_operator_token(runtime: Runtime, token: str) -> OperatorPrincipal | None:
    keyring = runtime.keyring
    if token.startswith(API_TOKEN_PREFIX):
        row = await runtime.pool.fetchrow(_API_SQL, keyring.digest("api-token", token))
        if row is None:
            return None
        if row["stale_use"]:  # bounded write amplification: at most one touch a minute
            await runtime.pool.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = $1", row["credential_id"])
        return OperatorPrincipal(row["identity_id"], row["kind"], row["domain_id"], row["email"], "api",
                                 row["credential_id"], ("token",))
    if token.startswith((ACCESS_PREFIX, SESSION_PREFIX)):
        row = await runtime.pool.fetchrow(_ACCESS_SQL, keyring.digest("access-token", token))
        if row is None:
            return None
        csrf_digest = bytes(row["csrf_digest"]) if row["csrf_digest"] is not None else None
        return OperatorPrincipal(row["identity_id"], row["kind"], row["domain_id"], row["email"],
                                 row["credential"], row["credential_id"], tuple(row["amr"] or ()), csrf_digest)
    return None


def check_csrf(request: Request, runtime: Runtime, principal: OperatorPrincipal | None = None) -> None:
    """Cookie-authenticated writes: a trusted origin and the double-submit header. When the session
    stored its CSRF token's digest, the header must also be that session's token."""
    origin = request.headers.get("origin")
    allowed = {o.strip() for o in runtime.settings.csrf_allowed_origins.split(",") if o.strip()}
    allowed.add(runtime.settings.base_url)
    same_site = request.headers.get("sec-fetch-site") == "same-origin"
    if not same_site and origin not in allowed:
        raise ProblemError(403, "csrf-origin-mismatch", "request origin is not allowed for cookie-authenticated writes")
    cookie = request.cookies.get(CSRF_COOKIE)
    header = request.headers.get(CSRF_HEADER)
    if not cookie or not header or not crypto.constant_time_equal(cookie.encode(), header.encode()):
        raise ProblemError(403, "csrf-token-mismatch", "X-Plexsphere-CSRF must equal the plexsphere_csrf cookie")
    if principal is not None and principal.csrf_digest is not None and not crypto.constant_time_equal(
        runtime.keyring.digest("csrf", header), principal.csrf_digest
    ):
        raise ProblemError(403, "csrf-token-mismatch", "the CSRF token does not belong to this session")


async def optional_operator(request: Request) -> OperatorPrincipal | None:
    runtime = runtime_of(request)
    token = bearer_token(request)
    if token is not None:
        return await resolve_operator_token(runtime, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await resolve_operator_token(runtime, cookie)
        if principal is not None and request.method in UNSAFE_METHODS:
            check_csrf(request, runtime, principal)
        return principal
    return None


async def require_operator(request: Request) -> OperatorPrincipal:
    """Dependency for operator routes: 401 `unauthenticated` without a valid credential."""
    principal = await optional_operator(request)
    if principal is None:
        raise unauthenticated()
    request.state.principal = principal
    return principal


# -- nodes ----------------------------------------------------------------------------------------
_NODE_BY_ID_SQL = "SELECT id, domain_id, project_id, env, nsk_digest FROM nodes WHERE id = $1"
_NODE_BY_DIGEST_SQL = "SELECT id, domain_id, project_id, env, nsk_digest FROM nodes WHERE nsk_digest = $1"


async def resolve_node_token(runtime: Runtime, token: str) -> NodePrincipal | None:
    credential = crypto.parse_nsk_bearer(token)
    if credential is None:
        return None
    digest = runtime.keyring.digest("nsk", credential.nsk)
    if credential.node_id is not None:
        row = await runtime.pool.fetchrow(_NODE_BY_ID_SQL, credential.node_id)
        if row is None or not crypto.constant_time_equal(bytes(row["nsk_digest"]), digest):
            return None
    else:
        row = await runtime.pool.fetchrow(_NODE_BY_DIGEST_SQL, digest)
        if row is None:
            return None
    return NodePrincipal(row["id"], row["domain_id"], row["project_id"], row["env"])


def require_node(unauthorized_code: str = "unauthorized"):
    """Dependency factory for NSK routes. A deleted Node's row is gone, so its NSK stops at once."""

    async def dependency(request: Request) -> NodePrincipal:
        token = bearer_token(request)
        principal = await resolve_node_token(runtime_of(request), token) if token else None
        if principal is None:
            raise unauthenticated("a valid node secret key is required", code=unauthorized_code)
        request.state.principal = principal
        return principal

    return dependency


def ensure_same_node(principal: NodePrincipal, path_node_id: uuid.UUID | str, code: str = "node_id_mismatch") -> None:
    if str(principal.node_id) != str(path_node_id):
        raise PermissionDeniedError(
            "the node secret key belongs to another node", reason="insufficient_relation", code=code, title="Forbidden"
        )


async def any_caller(request: Request) -> OperatorPrincipal | NodePrincipal:
    """Routes gated by `node-agent` accept the Node itself or an operator holding the permission."""
    token = bearer_token(request)
    runtime = runtime_of(request)
    principal: OperatorPrincipal | NodePrincipal | None
    if token is not None and looks_like_nsk(token):
        principal = await resolve_node_token(runtime, token)
    else:
        principal = await optional_operator(request)
    if principal is None:
        raise unauthenticated(code="unauthorized")
    request.state.principal = principal
    return principal
