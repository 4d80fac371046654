"""The on-disk identity: permissions, atomic writes, reuse, pending rotation keys."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from plexsphere.agent.identity import Identity, IdentityError, IdentityStore, public_key_of
from plexsphere.crypto import parse_nsk_bearer


def sample_identity() -> Identity:
    return Identity(
        node_id=uuid.uuid4(), nsk=bytes(range(32)), env="dev", project_id=uuid.uuid4(), resource_id="edge-01",
        control_plane_url="http://127.0.0.1:8080", mesh_ip="10.50.0.1", domain_mesh_cidr="10.50.0.0/24",
        signing_key_id="did:plexsphere:domain/dev#k1", signing_keys={"did:plexsphere:domain/dev#k1": "A" * 43 + "="},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_identity_round_trips_with_private_permissions(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "state")
    identity = sample_identity()
    store.save(identity)
    assert mode(store.dir) == 0o700
    assert mode(store.identity_path) == 0o600
    assert store.load() == identity
    assert not list(store.dir.glob(".tmp-*"))  # the temporary file was renamed, not left behind


def test_bearer_is_the_canonical_nsk_form(tmp_path: Path) -> None:
    identity = sample_identity()
    assert identity.bearer.startswith("nsk_dev_")
    credential = parse_nsk_bearer(identity.bearer)
    assert credential is not None
    assert (credential.node_id, credential.nsk) == (identity.node_id, identity.nsk)


def test_secrets_are_not_in_repr() -> None:
    identity = sample_identity()
    import base64

    assert identity.nsk.hex() not in repr(identity)
    assert base64.b64encode(identity.nsk).decode() not in repr(identity)
    assert identity.bearer not in repr(identity)


def test_private_key_is_created_once_and_reused(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    first = store.load_or_create_private_key()
    assert mode(store.key_path) == 0o600
    assert store.load_or_create_private_key() == first


def test_pending_key_is_persisted_and_promoted_atomically(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    old = store.load_or_create_private_key()
    pending = store.create_pending_private_key()
    assert mode(store.pending_key_path) == 0o600
    # A restart between persisting and promoting sees the same pending key.
    assert IdentityStore(tmp_path).pending_private_key() == pending
    assert store.promote_pending_private_key() == pending
    assert store.private_key() == pending != old
    assert store.pending_private_key() is None
    assert len(public_key_of(pending)) == 32


def test_corrupt_identity_is_an_error_not_a_silent_re_enrolment(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.ensure_dir()
    store.identity_path.write_text("{not json")
    with pytest.raises(IdentityError, match="not valid JSON"):
        store.load()
    store.identity_path.write_text('{"node_id": "x"}')
    with pytest.raises(IdentityError, match="malformed"):
        store.load()


def test_missing_identity_loads_as_none(tmp_path: Path) -> None:
    assert IdentityStore(tmp_path / "nothing").load() is None
