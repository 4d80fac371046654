"""Pure auth rules: device-flow state machine, user codes, throttling, identity refs, token lifetimes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from plexsphere.domain import auth as rules

NOW = datetime(2026, 5, 27, 10, 0, 0, 500_000, tzinfo=UTC)


def grant(status="pending", expires_in=600, interval=5, polled_ago=None) -> rules.DeviceGrant:
    last = NOW - timedelta(seconds=polled_ago) if polled_ago is not None else None
    return rules.DeviceGrant(status, NOW + timedelta(seconds=expires_in), interval, last)


# -- user codes ------------------------------------------------------------------------------------
def test_user_codes_use_the_contract_alphabet_and_every_byte_value():
    codes = {rules.user_code_from_bytes(bytes([b] * 8)) for b in range(256)}
    assert len(codes) == 32  # 256 byte values fold evenly onto 32 symbols: no bias
    for code in codes:
        assert rules.USER_CODE_PATTERN.match(rules.display_user_code(code))


def test_user_code_needs_eight_random_bytes():
    with pytest.raises(ValueError):
        rules.user_code_from_bytes(b"1234567")


@pytest.mark.parametrize(("typed", "stored"), [("ABCD-EFGH", "ABCDEFGH"), ("ABCDEFGH", "ABCDEFGH"),
                                               ("WXYZ-2345", "WXYZ2345")])
def test_typed_user_codes_normalise(typed, stored):
    assert rules.normalize_user_code(typed) == stored


@pytest.mark.parametrize("typed", ["abcd-efgh", "ABCD--EFGH", "ABCD-EFG1", "ABCD-EFGHI", "", None, 12345678])
def test_malformed_user_codes_are_rejected(typed):
    assert rules.normalize_user_code(typed) is None


# -- device polling --------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "outcome"), [
    (None, "invalid_grant"),
    (grant("redeemed"), "invalid_grant"),
    (grant("approved", expires_in=-1), "expired_token"),
    (grant("pending", expires_in=0), "expired_token"),
    (grant("denied"), "access_denied"),
    (grant("approved", polled_ago=0), "issue"),  # an approved grant is never told to slow down
    (grant("pending"), "authorization_pending"),
    (grant("pending", polled_ago=5), "authorization_pending"),
    (grant("pending", polled_ago=4.5), "authorization_pending"),  # a little early is tolerated
    (grant("pending", polled_ago=1), "slow_down"),
    (grant("pending", interval=10, polled_ago=6), "slow_down"),  # the raised interval holds
])
def test_poll_outcomes(state, outcome):
    assert rules.poll_outcome(state, NOW) == outcome


@pytest.mark.parametrize(("state", "conflict"), [
    (grant("pending"), None),
    (grant("approved"), "device-code-already-approved"),
    (grant("redeemed"), "device-code-already-approved"),
    (grant("denied"), "device-code-expired"),
    (grant("pending", expires_in=0), "device-code-expired"),
])
def test_approval_conflicts(state, conflict):
    assert rules.approval_conflict(state, NOW) == conflict


# -- sign-in throttling ----------------------------------------------------------------------------
def test_throttle_keys_separate_user_per_source_from_source():
    keys = rules.throttle_keys("Admin", "192.0.2.1")
    assert keys == {"user:admin|192.0.2.1": rules.FAILURES_PER_USER_AND_SOURCE,
                    "source:192.0.2.1": rules.FAILURES_PER_SOURCE}


def test_retry_after_only_once_the_limit_is_reached_within_the_window():
    started = NOW - timedelta(minutes=5)
    assert rules.retry_after(9, started, 10, NOW) is None
    assert rules.retry_after(10, started, 10, NOW) == 600
    assert rules.retry_after(50, NOW - timedelta(minutes=15), 10, NOW) is None  # window over
    assert rules.retry_after(10, NOW - timedelta(minutes=15, seconds=-0.2), 10, NOW) == 1  # rounds up


# -- API tokens ------------------------------------------------------------------------------------
def test_identity_refs():
    some = uuid.UUID("01900000-0000-7000-8000-000000000001")
    assert rules.parse_identity_ref(f"user:{some}") == ("user", some)
    assert rules.parse_identity_ref(f"service:{some}") == ("service-identity", some)
    for bad in (f"group:{some}", f"user{some}", "user:", "user:not-a-uuid",
                "user:00000000-0000-0000-0000-000000000000", f"service-identity:{some}", None, 7):
        assert rules.parse_identity_ref(bad) is None


def test_principal_type_spelling():
    assert rules.principal_type("user") == "user"
    assert rules.principal_type("service-identity") == "service"


@pytest.mark.parametrize(("requested", "granted"), [
    (None, 3600), (300, 300), (366 * 86400, 366 * 86400), (299, None), (366 * 86400 + 1, None), (0, None),
    (-5, None), (2**80, None),
])
def test_api_token_ttl_bounds(requested, granted):
    ttl = rules.api_token_ttl(requested, 3600)
    assert (ttl.total_seconds() if ttl else None) == granted


def test_rotation_deadline_is_whole_seconds_and_never_outlives_the_token():
    deadline = rules.rotation_deadline(NOW, NOW + timedelta(days=30))
    assert deadline == (NOW + rules.ROTATION_GRACE).replace(microsecond=0)
    assert parsedate_to_datetime(rules.http_date(deadline)) == deadline
    assert rules.http_date(deadline).endswith(" GMT")
    soon = NOW + timedelta(minutes=2)
    assert rules.rotation_deadline(NOW, soon) == soon.replace(microsecond=0)
