"""Scenario 1 — register: sustained POST /v1/register at 1, 16 and 64 concurrent clients into a
Domain already holding 10,000 anchored Nodes, next to the raw PostgreSQL rate of the same rows
written by one hand-written statement per registration (asyncpg, no HTTP, server stopped).

Goal: API ≥ 50% of raw, p99 < 100 ms at 16 clients."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import asyncpg

from bench.harness import (
    Postgres,
    Stack,
    Table,
    emit,
    finish_profile,
    make_stack,
    median,
    ms,
    nsk_aad,
    percentile,
    prefill,
    start_profile,
)
from bench.load import closed_loop
from bench.rawhttp import Connection

PREFILL = 10_000
LEVELS = [(1, 300, 4.0), (16, 3000, 6.0), (64, 3000, 6.0)]  # (clients, max requests, max seconds)


async def mint_tokens(stack: Stack, count: int) -> list[str]:
    """Bootstrap tokens written straight to the table (digest only, like the product)."""
    from plexsphere.crypto import random_bytes
    from plexsphere.domain import bootstrap_tokens as tokens
    from plexsphere.ids import uuid7
    from plexsphere.timeutil import utcnow

    now = utcnow()
    admin = await _admin_id(stack)
    plaintexts, rows = [], []
    for _ in range(count):
        plaintext = tokens.format_token("dev", stack.project_id, "node", random_bytes(tokens.RANDOM_BYTES))
        plaintexts.append(plaintext)
        rows.append((uuid7(), stack.project_id, stack.domain_id, "node", "dev",
                     stack.keyring.digest(tokens.DIGEST_PURPOSE, plaintext), admin, now, now + timedelta(hours=2)))
    conn = await stack.connect()
    try:
        await conn.copy_records_to_table(
            "bootstrap_tokens", schema_name="plexsphere", records=rows,
            columns=["id", "project_id", "domain_id", "kind", "env_prefix", "digest", "issued_by_user_id",
                     "issued_at", "expires_at"])
    finally:
        await conn.close()
    return plaintexts


async def _admin_id(stack: Stack) -> uuid.UUID:
    conn = await stack.connect()
    try:
        return await conn.fetchval("SELECT id FROM identities WHERE username = 'admin'")
    finally:
        await conn.close()


def public_keys(count: int) -> list[str]:
    from plexsphere.crypto import x25519_keypair

    return [base64.b64encode(x25519_keypair()[1]).decode() for _ in range(count)]


# The same rows POST /v1/register writes (token consumed, adopted resource, address from the pool's
# high-water mark, node, outbox row + notify), hand-written as one statement: the database's own
# rate for a registration with one hot row (the Domain's address pool) locked per transaction.
RAW_SQL = """
WITH tok AS (
    UPDATE bootstrap_tokens b SET consumed_at = now(), consumed_nonce = $2, consumed_by_node = $3
     WHERE b.digest = $1 AND b.consumed_at IS NULL AND b.revoked_at IS NULL AND b.expires_at > now()
       AND b.kind = 'node' AND b.project_id = $4
    RETURNING b.project_id, b.domain_id, b.env_prefix, b.kind
), res AS (
    INSERT INTO resources (id, project_id, domain_id, handle, kind, origin, external_ref, created_at, updated_at)
    SELECT $5, tok.project_id, tok.domain_id, $6, 'vm', 'adopted', $6, now(), now() FROM tok
    RETURNING id
), pool AS (
    UPDATE address_pools a SET next_offset = a.next_offset + 1 FROM tok
     WHERE a.domain_id = tok.domain_id
    RETURNING a.next_offset - 1 AS host_offset
), node AS (
    INSERT INTO nodes (id, domain_id, project_id, resource_id, kind, name, env, public_key, public_key_set_at,
                       mesh_ip, host_offset, nsk_wrapped, nsk_digest, created_at, updated_at)
    SELECT $3, tok.domain_id, tok.project_id, res.id, tok.kind, $6, tok.env_prefix, $7, now(),
           host(d.mesh_cidr + pool.host_offset)::inet, pool.host_offset, $8, $9, now(), now()
      FROM tok, res, pool, domains d WHERE d.id = tok.domain_id
    RETURNING id, domain_id, project_id, resource_id, mesh_ip
), ob AS (
    INSERT INTO outbox (topic, payload)
    SELECT 'node.registered', jsonb_build_object('node_id', node.id, 'domain_id', node.domain_id,
                                                 'project_id', node.project_id, 'resource_id', node.resource_id)
      FROM node RETURNING id
)
SELECT host(node.mesh_ip), pg_notify('plexsphere_outbox', 'node.registered') FROM node, ob
"""


async def raw_rate(stack: Stack, tokens: list[str], keys: list[str], clients: int, count: int,
                   duration: float):
    from plexsphere import crypto
    from plexsphere.domain import bootstrap_tokens as bt
    from plexsphere.ids import uuid7

    pool = await asyncpg.create_pool(stack.database_url, min_size=clients, max_size=clients,
                                     server_settings={"search_path": "plexsphere"}, reset=_no_reset)
    keyring = stack.keyring

    async def step(_state, n: int) -> str | None:
        # The CPU part the service does before its statement: NSK, wrap, digests, ids.
        node_id = uuid7()
        nsk = crypto.random_bytes(32)
        args = (keyring.digest(bt.DIGEST_PURPOSE, tokens[n]), uuid.uuid4().hex, node_id, stack.project_id,
                uuid7(), f"raw-{node_id.hex[-12:]}", base64.b64decode(keys[n]),
                keyring.wrap(nsk, nsk_aad(node_id)), keyring.digest("nsk", nsk))
        row = await pool.fetchrow(RAW_SQL, *args)
        return None if row else "not written"

    try:
        return await closed_loop(clients, lambda i: None, step, count=count, duration=duration)
    finally:
        await pool.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def api_rate(stack: Stack, tokens: list[str], keys: list[str], clients: int, count: int, duration: float):
    host, port = stack.url.split("//", 1)[1].split(":")

    async def step(conn: Connection, n: int) -> str | None:
        handle = f"api-{uuid.uuid4().hex[:12]}"
        body = {"project_id": str(stack.project_id), "resource_id": handle, "requested_resource_id": handle,
                "bootstrap_token": tokens[n], "nonce": uuid.uuid4().hex, "public_key": keys[n]}
        resp = await conn.request("POST", "/v1/register", json=body, keep_body=False)
        return None if resp.status == 200 else f"HTTP {resp.status}"

    return await closed_loop(clients, lambda i: Connection(host, int(port)), step, count=count, duration=duration)


async def run(pg: Postgres) -> None:
    stack = await make_stack(pg, start_server=False)
    try:
        await prefill(stack, PREFILL)
        need = sum(c for _, c, _ in LEVELS)
        raw_tokens, api_tokens = await mint_tokens(stack, need), await mint_tokens(stack, need)
        keys = public_keys(need)
        table = Table(f"register — POST /v1/register into a Domain holding {PREFILL:,} anchored Nodes",
                      ["clients", "path", "requests", "reg/s", "median ms", "p99 ms", "errors", "API / raw"])
        raw_results = {}
        offset = 0
        for clients, count, duration in LEVELS:
            raw_results[clients] = await raw_rate(stack, raw_tokens[offset:offset + count], keys[offset:offset + count],
                                                  clients, count, duration)
            offset += count
        # The raw rows' outbox entries would make the worker anchor them during the API run.
        conn = await stack.connect()
        await conn.execute("DELETE FROM outbox")
        await conn.execute("ANALYZE")
        await conn.close()
        server = stack.start_server()
        best_raw = max(r.rate for r in raw_results.values())
        offset = 0
        for clients, count, duration in LEVELS:
            raw = raw_results[clients]
            q0 = server.queries()
            cpu0 = server.stats.cpu_seconds()
            spy = start_profile(server.proc.pid, f"register-{clients}", duration)
            api = await api_rate(stack, api_tokens[offset:offset + count], keys[offset:offset + count], clients,
                                 count, duration)
            cpu = server.stats.cpu_seconds() - cpu0
            finish_profile(spy, f"register-{clients}")
            offset += count
            table.add(clients, "raw SQL", len(raw.latencies), f"{raw.rate:.0f}", ms(median(raw.latencies)),
                      ms(percentile(raw.latencies, 99)), sum(raw.errors.values()), "")
            table.add(clients, "HTTP API", len(api.latencies), f"{api.rate:.0f}", ms(median(api.latencies)),
                      ms(percentile(api.latencies, 99)), dict(api.errors) or 0,
                      f"{api.rate / raw.rate:.0%} (of best raw {api.rate / best_raw:.0%})")
            n = max(len(api.latencies), 1)
            table.notes.append(f"{clients} clients: server CPU {cpu / n * 1000:.2f} ms and "
                               f"{(server.queries() - q0) / n:.1f} SQL statements per registration "
                               "(worker anchoring included)")
        snapshot = stack.sql_value("SELECT count(*) FROM plexsphere.peers")
        table.notes.append(f"every response carries peer_snapshot: {snapshot:,} anchored peers at the end")
        table.notes.append("goal: API ≥ 50% of raw, p99 < 100 ms at 16 clients")
        emit(table)
    finally:
        stack.close()
