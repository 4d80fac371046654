"""Pure enrolment rules: token format, issue-request validation, register-request order,
addressing, the rate limiter and the CLI's TTL parsing. No I/O."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from plexsphere.domain import addressing, bootstrap_tokens, register
from plexsphere.domain.errors import ProblemError
from plexsphere.server.ratelimit import TokenBucketLimiter

PROJECT = uuid.UUID("0190a8b8-a0c0-7a0a-8a0a-a0a0a0a0a0a0")
KEY = base64.b64encode(bytes(range(1, 33))).decode()


def _token(kind: str = "node") -> str:
    return bootstrap_tokens.format_token("dev", PROJECT, kind, bytes(20))


# -- token format ---------------------------------------------------------------------------------
def test_token_matches_the_spec_regex_and_encodes_the_project():
    token = _token()
    assert bootstrap_tokens.TOKEN_PATTERN.match(token)
    _, env, project, kind, random = token.split("_")
    assert (env, kind) == ("dev", "node")
    padded = project.upper() + "=" * (-len(project) % 8)
    assert uuid.UUID(bytes=base64.b32decode(padded)) == PROJECT
    assert len(random) == 32  # 160 random bits


@pytest.mark.parametrize("token", [
    "psb_dev_abc_node_" + "a" * 19,  # random part too short
    "psb_DEV_abc_node_" + "a" * 20,
    "psb_dev_abc_relay_" + "a" * 20,
    "psb_dev_ab1_node_" + "a" * 20,  # 1 is not base32
    "psk_dev_abc_node_" + "a" * 20,
    None,
    42,
])
def test_malformed_tokens_are_not_well_formed(token):
    assert not bootstrap_tokens.is_well_formed(token)


# -- issue request --------------------------------------------------------------------------------
def test_issue_request_accepts_the_contract_shape():
    spec = bootstrap_tokens.parse_issue_request({"kind": "bridge", "env_prefix": "prod", "ttl_seconds": 300})
    assert spec == bootstrap_tokens.IssueSpec("bridge", "prod", 300)


@pytest.mark.parametrize("ttl", [299, 86401, -1, 0, 1.5, "600", True, None])
def test_ttl_outside_bounds_or_not_an_integer_is_invalid_ttl(ttl):
    with pytest.raises(ProblemError) as err:
        bootstrap_tokens.parse_issue_request({"kind": "node", "env_prefix": "dev", "ttl_seconds": ttl})
    assert (err.value.status, err.value.code) == (400, "invalid_ttl")


def test_issuer_cannot_be_spoofed_through_the_body():
    with pytest.raises(ProblemError) as err:
        bootstrap_tokens.parse_issue_request({"kind": "node", "env_prefix": "dev", "ttl_seconds": 600,
                                              "issued_by_user_id": str(uuid.uuid4())})
    assert err.value.code == "invalid_body"


def test_token_state_is_terminal_first_then_time():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(hours=1)
    assert bootstrap_tokens.state(None, None, future, now) == "live"
    assert bootstrap_tokens.state(None, None, now, now) == "expired"
    assert bootstrap_tokens.state(past, None, past, now) == "consumed"
    assert bootstrap_tokens.state(None, past, future, now) == "revoked"


def test_revoke_conflict_names_who_came_first():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert bootstrap_tokens.revoke_conflict(now, None).code == "token_consumed"
    assert bootstrap_tokens.revoke_conflict(None, now).code == "token_revoked"
    assert bootstrap_tokens.revoke_conflict(None, None) is None


# -- register request -----------------------------------------------------------------------------
def _body(**overrides):
    body = {"project_id": str(PROJECT), "resource_id": "edge-router-01", "bootstrap_token": _token(),
            "nonce": "abc", "public_key": KEY}
    body.update(overrides)
    return body


def test_a_valid_request_parses():
    parsed = register.parse_register_request(_body(requested_resource_id="edge-router-07"))
    assert parsed.project_id == PROJECT and parsed.public_key == bytes(range(1, 33))
    assert (parsed.resource_id, parsed.handle, parsed.adopt) == ("edge-router-01", "edge-router-07", True)


@pytest.mark.parametrize("requested", [None, "", "   "])
def test_without_a_requested_handle_the_resource_id_is_the_handle_and_nothing_is_adopted(requested):
    parsed = register.parse_register_request(_body(requested_resource_id=requested))
    assert (parsed.handle, parsed.adopt) == ("edge-router-01", False)


def test_public_key_is_validated_before_anything_else():
    with pytest.raises(ProblemError) as err:
        register.parse_register_request({"public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert (err.value.status, err.value.code) == (400, "public_key_invalid")


@pytest.mark.parametrize("field, value, code", [
    ("bootstrap_token", "", "invalid_bootstrap_token"),
    ("bootstrap_token", "psb_nope", "invalid_bootstrap_token"),
    ("project_id", str(uuid.UUID(int=0)), "invalid_project_id"),
    ("project_id", 5, "invalid_project_id"),
    ("resource_id", "  ", "invalid_resource_id"),
    ("resource_id", "x" * 257, "invalid_resource_id"),
    ("nonce", "", "invalid_nonce"),
    ("requested_resource_id", 7, "invalid_resource_id"),
])
def test_empty_zero_or_oversized_fields_are_422(field, value, code):
    with pytest.raises(ProblemError) as err:
        register.parse_register_request(_body(**{field: value}))
    assert (err.value.status, err.value.code) == (422, code)


def test_database_denials_map_to_problems_and_other_errors_do_not():
    problem = register.denial_from_database("403:token_consumed")
    assert (problem.status, problem.code) == (403, "token_consumed")
    assert register.denial_from_database("503:pool_exhausted").status == 503
    assert register.denial_from_database("division by zero") is None
    assert register.denial_from_database("x:y") is None


# -- addressing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cidr, capacity", [
    ("10.50.0.0/24", 254), ("10.0.0.0/29", 6), ("10.0.0.0/31", 1), ("10.0.0.0/32", 0),
    ("fd00::/120", 255), ("fd00::/64", 2**63 - 1),
])
def test_capacity_excludes_network_and_ipv4_broadcast(cidr, capacity):
    assert addressing.capacity(cidr) == capacity


def test_offsets_and_addresses_round_trip():
    assert str(addressing.address_at("10.50.0.0/24", 1)) == "10.50.0.1"
    assert addressing.offset_of("10.50.0.0/24", "10.50.0.254") == 254
    for bad in (0, 255):
        with pytest.raises(ValueError):
            addressing.address_at("10.50.0.0/24", bad)
    for bad in ("10.50.0.0", "10.50.0.255", "10.51.0.1"):
        with pytest.raises(ValueError):
            addressing.offset_of("10.50.0.0/24", bad)


# -- rate limiter ---------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_admits_the_burst_then_refills_at_the_rate():
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(1.0)
    assert limiter.acquire("b") is None  # another source has its own bucket
    clock.now += 1.0
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None


def test_rate_zero_disables_the_limit():
    limiter = TokenBucketLimiter(rate_per_minute=0, burst=1)
    assert all(limiter.acquire("a") is None for _ in range(1000))


def test_idle_sources_are_forgotten_so_memory_stays_bounded(monkeypatch):
    from plexsphere.server import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_TRACKED_SOURCES", 10)
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=2, clock=clock)
    for i in range(10):
        limiter.acquire(f"s{i}")
    clock.now += 5  # every bucket refilled: nothing to remember
    limiter.acquire("new")
    assert len(limiter._buckets) == 1


# -- CLI ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("24h", 86400),
                                           ("1h30m", 5400)])
def test_cli_ttl_takes_go_durations(text, seconds):
    from plexsphere.cli.bootstrap_tokens import ttl_seconds

    assert ttl_seconds(text) == seconds


@pytest.mark.parametrize("text", ["1 hour", "", "-1h", "1.5s5ms", "0s"])
def test_cli_ttl_rejects_other_text(text):
    import typer

    from plexsphere.cli.bootstrap_tokens import ttl_seconds

    with pytest.raises(typer.Exit):
        ttl_seconds(text)
