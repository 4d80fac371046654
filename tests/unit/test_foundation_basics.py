from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plexsphere import ids, timeutil
from plexsphere.crypto import Keyring
from plexsphere.domain.errors import ProblemError
from plexsphere.server import pagination
from plexsphere.services.signing import SigningKey, sign_envelope, verify_envelope


def test_uuid7_is_version_7_and_strictly_increasing():
    values = [ids.uuid7() for _ in range(5000)]
    assert all(v.version == 7 for v in values)
    assert values == sorted(values, key=lambda u: u.bytes)
    assert len(set(values)) == len(values)


def test_parse_uuid_rejects_nil_and_garbage():
    assert ids.parse_uuid("00000000-0000-0000-0000-000000000000") is None
    assert ids.parse_uuid("nope") is None
    assert ids.parse_uuid(str(ids.uuid7())) is not None


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("24h", 86400),
                                          ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("0", 0)])
def test_go_durations(text, seconds):
    assert timeutil.parse_go_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "-5m", "1d", "h", "5 m", "1h 2m"])
def test_bad_go_durations(text):
    assert timeutil.parse_go_duration(text) is None


def test_rfc3339_is_utc_with_z():
    moment = datetime(2026, 5, 27, 10, 0, 0, tzinfo=UTC)
    assert timeutil.rfc3339(moment) == "2026-05-27T10:00:00Z"
    assert timeutil.parse_rfc3339("2026-05-27T12:00:00+02:00") == moment
    assert timeutil.parse_rfc3339("2026-05-27T10:00:00") is None  # no offset
    assert timeutil.format_go_duration(90) == "1m30s"


def test_cursor_round_trip_binding_and_tampering():
    keyring = Keyring.generate()
    cursor = pagination.encode_cursor(keyring, "user:a", "domains", ["acme", "id-1"])
    assert pagination.decode_cursor(keyring, "user:a", "domains", cursor) == ["acme", "id-1"]
    with pytest.raises(ProblemError) as other:
        pagination.decode_cursor(keyring, "user:b", "domains", cursor)
    assert (other.value.status, other.value.code) == (403, "cursor_binding_mismatch")
    body, _, mac = cursor.partition(".")
    for tampered in (body[:-2] + "AA." + mac, cursor + "x", "garbage", cursor.replace(".", "")):
        with pytest.raises(ProblemError) as bad:
            pagination.decode_cursor(keyring, "user:a", "domains", tampered)
        assert bad.value.code == "invalid_cursor"
    with pytest.raises(ProblemError):
        pagination.decode_cursor(keyring, "user:a", "projects", cursor)  # another listing


@pytest.mark.parametrize("raw,ok", [(None, 50), ("1", 1), ("200", 200), ("0", None), ("201", None), ("x", None)])
def test_limit_bounds(raw, ok):
    if ok is None:
        with pytest.raises(ProblemError) as err:
            pagination.parse_limit(raw)
        assert err.value.code == "invalid_limit"
    else:
        assert pagination.parse_limit(raw) == ok


def test_signed_envelope_verifies_and_detects_tampering():
    from plexsphere import crypto

    private, public = crypto.ed25519_generate()
    key = SigningKey(ids.uuid7(), "did:plexsphere:domain/dev#k1", public, private)
    envelope = {"id": str(ids.uuid7()), "type": "peer_added", "scope": "domain:x", "key_id": key.key_id,
                "issued_at": "2026-05-27T10:00:00Z", "payload": {"mesh_ip": "10.50.0.2", "é": [1, 2]}}
    envelope["signature"] = sign_envelope(key, envelope)
    assert verify_envelope(public, envelope)
    tampered = dict(envelope, payload={"mesh_ip": "10.50.0.3", "é": [1, 2]})
    assert not verify_envelope(public, tampered)
