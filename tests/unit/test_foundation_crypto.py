"""Pure checks of the primitives every other layer relies on."""

from __future__ import annotations

import base64
import uuid

import pytest
from cryptography.exceptions import InvalidTag

from plexsphere import crypto
from plexsphere.crypto import Keyring, KeyringError


def test_wrapped_blob_unwraps_only_with_its_row_binding():
    keyring = Keyring.generate()
    blob = keyring.wrap(b"secret", b"nsk:node-1")
    assert keyring.unwrap(blob, b"nsk:node-1") == b"secret"
    with pytest.raises(InvalidTag):
        keyring.unwrap(blob, b"nsk:node-2")


def test_blobs_of_an_older_kek_still_unwrap_after_a_new_version_is_added():
    old = Keyring.generate()
    blob = old.wrap(b"psk", b"aad")
    newer = Keyring(keks={**old.keks, 2: b"\x01" * 32}, hmac_secret=old.hmac_secret)
    assert newer.active_version == 2
    assert newer.unwrap(blob, b"aad") == b"psk"
    assert Keyring.blob_version(newer.wrap(b"x", b"a")) == 2


def test_keyring_round_trips_through_its_file_format():
    keyring = Keyring.generate()
    assert Keyring.loads(keyring.dumps()) == keyring
    with pytest.raises(KeyringError):
        Keyring.loads("kek 1 notbase64!!\nhmac AAAA\n")


def test_digests_are_separated_by_purpose():
    keyring = Keyring.generate()
    assert keyring.digest("nsk", b"x") != keyring.digest("api-token", b"x")
    assert keyring.digest("nsk", b"x") == keyring.digest("nsk", b"x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short=",
        base64.b64encode(bytes(32)).decode(),  # all zero
        base64.b64encode(b"\x01" * 31).decode().ljust(44, "="),  # wrong length
        "!" * 43 + "=",
        base64.b64encode(b"\x01" * 32).decode()[:-2] + "B=",  # non-canonical trailing bits
    ],
)
def test_bad_wireguard_keys_are_refused(text):
    assert crypto.parse_wireguard_public_key(text) is None


def test_a_real_wireguard_key_parses():
    _, public = crypto.x25519_keypair()
    assert crypto.parse_wireguard_public_key(base64.b64encode(public).decode()) == public


def test_nsk_bearer_round_trips_in_both_accepted_forms():
    node_id = uuid.uuid4()
    nsk = crypto.random_bytes(32)
    canonical = crypto.format_nsk_bearer("dev", node_id, nsk)
    assert canonical.startswith("nsk_dev_") and len(canonical) == len("nsk_dev_") + 64
    parsed = crypto.parse_nsk_bearer(canonical)
    assert parsed == crypto.NskCredential(node_id, nsk)
    bare = crypto.parse_nsk_bearer(base64.b64encode(nsk).decode())
    assert bare == crypto.NskCredential(None, nsk)
    assert crypto.parse_nsk_bearer("nsk_DEV_" + canonical[8:]) is None
    assert crypto.parse_nsk_bearer("nsk_dev_tooshort") is None


def test_the_tutorial_envelope_recipe_matches_our_bearer_format():
    """The tutorial assembles the bearer in python3 from node_id and the base64 nsk."""
    node_id = uuid.uuid4()
    nsk = crypto.random_bytes(32)
    payload = node_id.bytes + base64.b64decode(base64.b64encode(nsk))
    tutorial = "nsk_dev_" + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    assert tutorial == crypto.format_nsk_bearer("dev", node_id, nsk)


def test_edge_psk_is_symmetric_and_changes_with_either_end():
    a, b = uuid.uuid4(), uuid.uuid4()
    pa, pb = crypto.random_bytes(32), crypto.random_bytes(32)
    edge = crypto.derive_edge_psk(a, pa, b, pb)
    assert edge == crypto.derive_edge_psk(b, pb, a, pa)
    assert len(edge) == 32
    assert edge != crypto.derive_edge_psk(a, crypto.random_bytes(32), b, pb)


def test_sealed_psk_envelope_is_60_bytes_and_opens_with_the_nsk():
    nsk = crypto.random_bytes(32)
    psk = crypto.random_bytes(32)
    envelope = crypto.seal_for_node(nsk, psk)
    assert len(envelope) == 60
    assert crypto.open_from_server(nsk, envelope) == psk


def test_ed25519_sign_and_verify():
    private, public = crypto.ed25519_generate()
    signature = crypto.ed25519_sign(private, b"msg")
    assert crypto.ed25519_verify(public, signature, b"msg")
    assert not crypto.ed25519_verify(public, signature, b"msg2")
