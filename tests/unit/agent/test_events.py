"""SSE framing and signed-envelope verification (DECISIONS 5)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import rfc8785

from plexsphere.agent.events import (
    EnvelopeRejected,
    EnvelopeVerifier,
    SseFrame,
    SseParser,
    canonical_bytes,
    rotated_signing_key,
)
from plexsphere.crypto import ed25519_generate, ed25519_sign

KID = "did:plexsphere:domain/dev#k1"


def signed(private: bytes, key_id: str = KID, **overrides) -> dict:
    envelope = {"id": str(uuid.uuid4()), "type": "peer_added", "scope": "domain:x", "key_id": key_id,
                "issued_at": "2026-05-27T10:00:00Z", "payload": {"node_id": "n", "mesh_ip": "10.50.0.2"}}
    envelope.update(overrides)
    envelope["signature"] = base64.b64encode(ed25519_sign(private, rfc8785.dumps(envelope))).decode()
    return envelope


@pytest.fixture
def domain_key() -> tuple[bytes, bytes]:
    return ed25519_generate()


def test_parser_yields_frames_and_skips_keepalives() -> None:
    parser = SseParser()
    lines = [":keep-alive", "", "id: 17", "event: peer_added", 'data: {"a":', "data: 1}", "", "id: 18", ""]
    frames = [f for f in (parser.feed(line) for line in lines) if f is not None]
    assert frames == [SseFrame(event="peer_added", data='{"a":\n1}', id="17")]


def test_canonical_form_is_jcs_without_signature() -> None:
    assert canonical_bytes({"b": 1, "a": "x", "signature": "zzz"}) == b'{"a":"x","b":1}'


def test_valid_envelope_is_accepted(domain_key) -> None:
    private, public = domain_key
    envelope = signed(private)
    assert EnvelopeVerifier({KID: public}).verify(json.dumps(envelope)) == envelope


def test_forged_payload_is_rejected(domain_key) -> None:
    private, public = domain_key
    envelope = signed(private)
    envelope["payload"]["mesh_ip"] = "10.50.0.66"  # tampered after signing
    with pytest.raises(EnvelopeRejected, match="bad signature"):
        EnvelopeVerifier({KID: public}).verify(json.dumps(envelope))


def test_envelope_signed_by_another_key_under_a_known_kid_is_rejected(domain_key) -> None:
    _, public = domain_key
    attacker, _ = ed25519_generate()
    with pytest.raises(EnvelopeRejected, match="bad signature"):
        EnvelopeVerifier({KID: public}).verify(json.dumps(signed(attacker)))


def test_unknown_key_id_is_rejected(domain_key) -> None:
    private, public = domain_key
    with pytest.raises(EnvelopeRejected, match="unknown key id"):
        EnvelopeVerifier({KID: public}).verify(json.dumps(signed(private, key_id="did:other#k9")))


@pytest.mark.parametrize("data", ["not json", "[]", '{"id":"x","type":"peer_added"}'])
def test_malformed_envelopes_are_rejected(domain_key, data: str) -> None:
    with pytest.raises(EnvelopeRejected):
        EnvelopeVerifier({KID: domain_key[1]}).verify(data)


def test_replayed_envelope_is_rejected(domain_key) -> None:
    private, public = domain_key
    verifier = EnvelopeVerifier({KID: public})
    data = json.dumps(signed(private))
    verifier.verify(data)
    with pytest.raises(EnvelopeRejected, match="replayed"):
        verifier.verify(data)


def test_learnt_key_verifies_later_envelopes(domain_key) -> None:
    private, public = domain_key
    next_private, next_public = ed25519_generate()
    verifier = EnvelopeVerifier({KID: public})
    announcement = verifier.verify(json.dumps(signed(private, type="signing_key_rotated", payload={
        "key_id": "did:plexsphere:domain/dev#k2", "public_key": base64.b64encode(next_public).decode()})))
    key_id, raw = rotated_signing_key(announcement["payload"])
    verifier.learn_key(key_id, raw)
    verifier.verify(json.dumps(signed(next_private, key_id="did:plexsphere:domain/dev#k2")))


def test_rotated_key_payload_without_a_key_is_not_trusted() -> None:
    assert rotated_signing_key({"key_id": "k2"}) is None
    assert rotated_signing_key({"key_id": "k2", "public_key": base64.b64encode(b"short").decode()}) is None
