"""Operator authentication use cases: local password sign-in, sign-out, whoami, API tokens and the
RFC 8628 device flow. Secrets (token plaintexts, device codes, CSRF tokens) are returned once and
stored only as HMAC digests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from plexsphere import crypto
from plexsphere.domain import auth as rules
from plexsphere.domain.errors import ProblemError, not_found
from plexsphere.ids import parse_uuid, uuid7
from plexsphere.server.auth import ACCESS_PREFIX, API_TOKEN_PREFIX, SESSION_PREFIX, OperatorPrincipal
from plexsphere.server.runtime import Runtime
from plexsphere.services import authz
from plexsphere.services.bootstrap import mint_api_token, password_hasher
from plexsphere.timeutil import utcnow
from plexsphere.wire.auth import (
    APITokenIssueRequest,
    APITokenIssueResponse,
    APITokenRotateResponse,
    APITokenSummary,
    DeviceCodeRequest,
    DeviceCodeResponse,
    LocalProvider,
    ServiceTokenResponse,
    Whoami,
)

# argon2id verification is deliberately slow (≈ 8/s per core here): run it off the event loop, and
# at most this many at once so a burst of sign-ins cannot starve every other request.
ARGON2_CONCURRENCY = 2
LOCAL_ALIAS = "local"  # the implicit binding of the local identity provider


def invalid_credentials() -> ProblemError:
    # One body for unknown users and wrong passwords: the response must not reveal which.
    return ProblemError(401, "invalid_credentials", "username or password is incorrect",
                        headers={"WWW-Authenticate": "Bearer"})


def _argon2_gate(runtime: Runtime) -> asyncio.Semaphore:
    gate = runtime.extras.get("auth.argon2")
    if gate is None:
        gate = runtime.extras["auth.argon2"] = asyncio.Semaphore(ARGON2_CONCURRENCY)
    return gate


_dummy_hash: str | None = None


def _verify_password(password_hash: str | None, password: str) -> bool:
    """Always does one argon2 verification, against a throwaway hash when the user has none, so
    unknown usernames cost as much as wrong passwords."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = password_hasher.hash(crypto.b64url(crypto.random_bytes(16)))
        password_hash, password = _dummy_hash, password + "\x00not-it"
    try:
        return password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# -- sign-in / sign-out ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignIn:
    token: ServiceTokenResponse
    session: str
    csrf: str
    max_age: int


_THROTTLE_SQL = "SELECT key, failures, window_started_at FROM sign_in_throttle WHERE key = ANY($1::text[])"

_RECORD_FAILURE_SQL = """
INSERT INTO sign_in_throttle AS t (key, failures, window_started_at)
SELECT k, 1, now() FROM unnest($1::text[]) AS k
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN t.window_started_at < now() - $2::interval THEN 1 ELSE t.failures + 1 END,
    window_started_at = CASE WHEN t.window_started_at < now() - $2::interval THEN now() ELSE t.window_started_at END
"""


async def _throttle(conn: asyncpg.Connection, keys: dict[str, int]) -> None:
    now = utcnow()
    waits = [
        rules.retry_after(row["failures"], row["window_started_at"], keys[row["key"]], now)
        for row in await conn.fetch(_THROTTLE_SQL, list(keys))
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise ProblemError(429, "rate_limited", "too many failed sign-ins; try again later",
                           headers={"Retry-After": str(wait)})


def _new_secret(prefix: str = "") -> str:
    return prefix + crypto.b64url(crypto.random_bytes(32))


async def _insert_access_token(conn: asyncpg.Connection, runtime: Runtime, identity_id: uuid.UUID, kind: str,
                               amr: list[str], ttl: timedelta, csrf: str | None = None) -> str:
    prefix = ACCESS_PREFIX if kind == "access" else SESSION_PREFIX
    plaintext = _new_secret(prefix)
    now = utcnow()
    await conn.execute(
        """INSERT INTO access_tokens (id, identity_id, digest, kind, csrf_digest, amr, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        uuid7(), identity_id, runtime.keyring.digest("access-token", plaintext), kind,
        runtime.keyring.digest("csrf", csrf) if csrf else None, amr, now, now + ttl,
    )
    return plaintext


async def sign_in_local(runtime: Runtime, username: str, password: str, source: str) -> SignIn:
    """Password sign-in of a local identity → a bearer access token and a browser session."""
    keys = rules.throttle_keys(username, source)
    async with runtime.pool.acquire() as conn:
        await _throttle(conn, keys)
        row = await conn.fetchrow("SELECT id, password_hash FROM identities WHERE username = $1", username)
    async with _argon2_gate(runtime):
        ok = await asyncio.to_thread(_verify_password, row["password_hash"] if row else None, password)
    if not ok or row is None:
        await runtime.pool.execute(_RECORD_FAILURE_SQL, list(keys), rules.SIGN_IN_WINDOW)
        raise invalid_credentials()

    ttl = timedelta(seconds=runtime.settings.access_token_ttl_seconds)
    amr = ["pwd"]
    csrf = _new_secret()
    async with runtime.pool.acquire() as conn, conn.transaction():
        access = await _insert_access_token(conn, runtime, row["id"], "access", amr, ttl)
        session = await _insert_access_token(conn, runtime, row["id"], "session", amr, ttl, csrf)
        await conn.execute("UPDATE identities SET last_sign_in_at = now() WHERE id = $1", row["id"])
        await conn.execute("DELETE FROM sign_in_throttle WHERE key = $1", next(iter(keys)))
        if password_hasher.check_needs_rehash(row["password_hash"]):
            new_hash = await asyncio.to_thread(password_hasher.hash, password)
            await conn.execute("UPDATE identities SET password_hash = $2 WHERE id = $1", row["id"], new_hash)
    seconds = int(ttl.total_seconds())
    return SignIn(ServiceTokenResponse(access_token=access, expires_in=seconds), session, csrf, seconds)


async def sign_out(runtime: Runtime, presented: list[str]) -> None:
    """Revokes the presented access tokens and sessions. API tokens are left alone: signing out
    ends a sign-in, it does not destroy a credential someone minted on purpose."""
    digests = [runtime.keyring.digest("access-token", t) for t in presented
               if t.startswith((ACCESS_PREFIX, SESSION_PREFIX))]
    if digests:
        await runtime.pool.execute(
            "UPDATE access_tokens SET revoked_at = now() WHERE digest = ANY($1::bytea[]) AND revoked_at IS NULL",
            digests,
        )


def whoami(principal: OperatorPrincipal) -> Whoami:
    return Whoami(
        principal_type=rules.principal_type(principal.kind),
        subject=str(principal.identity_id),
        domain_id=principal.domain_id,
        email=principal.email,
        amr=list(principal.amr) or None,
    )


async def local_provider(runtime: Runtime, domain: str | None) -> LocalProvider:
    """The Domain a device login should name: the one asked for (slug or id), else the local
    admin's (the seeded Domain), else the oldest."""
    if domain:
        domain_id = parse_uuid(domain)
        if domain_id is not None:
            found = await runtime.pool.fetchval("SELECT id FROM domains WHERE id = $1", domain_id)
        else:
            found = await runtime.pool.fetchval("SELECT id FROM domains WHERE slug = $1", domain)
    else:
        found = await runtime.pool.fetchval(
            """SELECT coalesce(
                   (SELECT i.domain_id FROM identities i JOIN domains d ON d.id = i.domain_id
                     WHERE i.password_hash IS NOT NULL ORDER BY i.created_at LIMIT 1),
                   (SELECT id FROM domains ORDER BY created_at, id LIMIT 1))"""
        )
    if found is None:
        raise not_found("domain_not_found", "domain")
    return LocalProvider(domain_id=found, methods=["password", "device_code"])


# -- API tokens ------------------------------------------------------------------------------------
_SUMMARY_COLUMNS = "id, env_prefix, created_at, expires_at, last_used_at, rotated_at"


async def list_api_tokens(runtime: Runtime, principal: OperatorPrincipal) -> list[APITokenSummary]:
    rows = await runtime.pool.fetch(
        f"""SELECT {_SUMMARY_COLUMNS} FROM api_tokens
             WHERE identity_id = $1 AND revoked_at IS NULL ORDER BY created_at, id""",
        principal.identity_id,
    )
    return [APITokenSummary(**dict(r)) for r in rows]


async def issue_api_token(runtime: Runtime, principal: OperatorPrincipal,
                          request: APITokenIssueRequest) -> APITokenIssueResponse:
    ref = rules.parse_identity_ref(request.identity_ref)
    if ref is None:
        raise ProblemError(400, "invalid_body", "identity_ref must be user:<uuid> or service:<uuid>")
    ttl = rules.api_token_ttl(request.ttl_seconds, runtime.settings.api_token_default_ttl_seconds)
    if ttl is None:
        raise ProblemError(400, "invalid_ttl", "ttl_seconds must be between 300 and 31622400")
    kind, identity_id = ref
    async with runtime.pool.acquire() as conn, conn.transaction():
        if (kind, identity_id) != (principal.kind, principal.identity_id):
            # Minting a credential for someone else is a platform administrator's act.
            await authz.require(conn, principal.subject, "platform-admin", "platform:plexsphere")
            exists = await conn.fetchval("SELECT 1 FROM identities WHERE id = $1 AND kind = $2", identity_id, kind)
            if not exists:
                raise not_found("identity_not_found", "identity")
        token_id, plaintext = await mint_api_token(conn, runtime.keyring, identity_id, request.env_prefix, ttl)
        expires_at = await conn.fetchval("SELECT expires_at FROM api_tokens WHERE id = $1", token_id)
    return APITokenIssueResponse(id=token_id, plaintext=plaintext, env_prefix=request.env_prefix,
                                 expires_at=expires_at)


async def revoke_api_token(runtime: Runtime, principal: OperatorPrincipal, token_id: uuid.UUID) -> None:
    status = await runtime.pool.execute(
        """UPDATE api_tokens SET revoked_at = now()
            WHERE id = $1 AND identity_id = $2 AND revoked_at IS NULL""",
        token_id, principal.identity_id,
    )
    if status != "UPDATE 1":
        raise not_found("api_token_not_found", "API token")


# The expiry stays: rotation replaces the secret, it never extends a credential's life (a leaked
# token rotated by its thief still dies on schedule).
_ROTATE_SQL = """
UPDATE api_tokens
   SET previous_digest = digest, previous_valid_until = $3, digest = $2, rotated_at = $4
 WHERE id = $1
RETURNING env_prefix, expires_at
"""


async def rotate_api_token(runtime: Runtime, principal: OperatorPrincipal,
                           token_id: uuid.UUID) -> APITokenRotateResponse:
    """New plaintext now; the previous one keeps working until the rotation deadline (Sunset)."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT env_prefix, expires_at FROM api_tokens WHERE id = $1 AND identity_id = $2 "
            "AND revoked_at IS NULL FOR UPDATE",
            token_id, principal.identity_id,
        )
        now = utcnow()
        if row is None or row["expires_at"] <= now:
            raise not_found("api_token_not_found", "API token")
        deadline = rules.rotation_deadline(now, row["expires_at"])
        plaintext = f"{API_TOKEN_PREFIX}{row['env_prefix']}_{crypto.b64url(crypto.random_bytes(32))}"
        updated = await conn.fetchrow(_ROTATE_SQL, token_id, runtime.keyring.digest("api-token", plaintext),
                                      deadline, now)
    return APITokenRotateResponse(id=token_id, plaintext=plaintext, env_prefix=updated["env_prefix"],
                                  expires_at=updated["expires_at"], rotation_deadline=deadline)


# -- device flow (RFC 8628) ------------------------------------------------------------------------
async def create_device_code(runtime: Runtime, request: DeviceCodeRequest, base_url: str) -> DeviceCodeResponse:
    if request.idp_binding_id is not None and request.idp_binding_alias is not None:
        raise ProblemError(400, "invalid_body", "idp_binding_id and idp_binding_alias are mutually exclusive")
    # The local identity provider is the only binding; naming any other one finds nothing.
    if request.idp_binding_id is not None or request.idp_binding_alias not in (None, LOCAL_ALIAS):
        raise not_found("idp_binding_not_found", "identity provider binding")
    device_code = _new_secret("pxd_")
    async with runtime.pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM domains WHERE id = $1", request.domain_id):
            raise not_found("domain_not_found", "domain")
        # Expired grants are useless after a day; dropping them keeps user codes from piling up.
        await conn.execute("DELETE FROM device_codes WHERE expires_at < now() - interval '1 day'")
        now = utcnow()
        for _ in range(5):
            user_code = rules.user_code_from_bytes(crypto.random_bytes(rules.USER_CODE_LENGTH))
            inserted = await conn.fetchval(
                """INSERT INTO device_codes (id, device_code_digest, user_code, domain_id, client_id, interval_s,
                                             created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_code) DO NOTHING RETURNING 1""",
                uuid7(), runtime.keyring.digest("device-code", device_code), user_code, request.domain_id,
                request.client_id, rules.DEVICE_POLL_INTERVAL_S, now, now + rules.DEVICE_CODE_TTL,
            )
            if inserted:
                break
        else:  # 2^40 codes: five collisions in a row means something else is wrong
            raise ProblemError(500, "internal", "could not allocate a user code")
    display = rules.display_user_code(user_code)
    uri = f"{base_url}/device"
    return DeviceCodeResponse(
        device_code=device_code, user_code=display, verification_uri=uri,
        verification_uri_complete=f"{uri}?user_code={display}",
        expires_in=int(rules.DEVICE_CODE_TTL.total_seconds()), interval=rules.DEVICE_POLL_INTERVAL_S,
    )


def _grant(row: Any) -> rules.DeviceGrant:
    return rules.DeviceGrant(row["status"], row["expires_at"], row["interval_s"], row["last_polled_at"])


async def poll_device_token(runtime: Runtime, device_code: str) -> ServiceTokenResponse:
    """One poll. Polls of one grant are serialised on its row, so an approval is redeemed once."""
    async with runtime.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """SELECT id, status, identity_id, amr, interval_s, last_polled_at, expires_at
                 FROM device_codes WHERE device_code_digest = $1 FOR UPDATE""",
            runtime.keyring.digest("device-code", device_code),
        )
        now = utcnow()
        outcome = rules.poll_outcome(_grant(row) if row else None, now)
        if outcome == "issue":
            await conn.execute("UPDATE device_codes SET status = 'redeemed', last_polled_at = $2 WHERE id = $1",
                               row["id"], now)
            ttl = timedelta(seconds=runtime.settings.access_token_ttl_seconds)
            token = await _insert_access_token(conn, runtime, row["identity_id"], "access", list(row["amr"]), ttl)
            return ServiceTokenResponse(access_token=token, expires_in=int(ttl.total_seconds()))
        if row is not None and outcome in ("authorization_pending", "slow_down"):
            bump = rules.SLOW_DOWN_STEP_S if outcome == "slow_down" else 0
            await conn.execute(
                "UPDATE device_codes SET last_polled_at = $2, interval_s = interval_s + $3 WHERE id = $1",
                row["id"], now, bump,
            )
    raise _device_token_error(outcome)


_DEVICE_TOKEN_DETAILS = {
    "authorization_pending": "the user has not approved this device yet",
    "slow_down": "polling too fast; add 5 seconds to the interval",
    "expired_token": "the device code has expired; start the login again",
    "access_denied": "the user denied this device",
    "invalid_grant": "the device code is unknown or was already used",
}


def _device_token_error(code: str) -> ProblemError:
    # Committed before raising: the poll's bookkeeping (last_polled_at, interval) must persist.
    return ProblemError(400, code, _DEVICE_TOKEN_DETAILS[code])


async def decide_device(runtime: Runtime, principal: OperatorPrincipal, user_code: str, approve: bool) -> None:
    """Approves (binding the signed-in identity) or denies a pending grant. The local provider
    serves every Domain, so any signed-in local identity may approve a code of any Domain; the
    token it yields carries that identity's own permissions, nothing more."""
    code = rules.normalize_user_code(user_code)
    if code is None:
        raise ProblemError(400, "invalid_body", "user_code must look like ABCD-EFGH")
    async with runtime.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, status, interval_s, last_polled_at, expires_at FROM device_codes WHERE user_code = $1 "
            "FOR UPDATE",
            code,
        )
        if row is None:
            raise ProblemError(404, "device-code-not-found", "no device login is waiting for this code")
        conflict = rules.approval_conflict(_grant(row), utcnow())
        if conflict == "device-code-expired":
            raise ProblemError(409, conflict, "this device code has expired or was denied")
        if conflict:
            raise ProblemError(409, conflict, "this device code was already approved")
        await conn.execute(
            """UPDATE device_codes SET status = $2, identity_id = $3, amr = $4, approved_at = now()
                WHERE id = $1""",
            row["id"], rules.APPROVED if approve else rules.DENIED, principal.identity_id, list(principal.amr),
        )
