"""Password verification: unknown users cost one argon2id verification too, and never match."""

from __future__ import annotations

from plexsphere.services import auth
from plexsphere.services.bootstrap import password_hasher


def test_the_right_password_verifies_and_a_wrong_one_does_not():
    stored = password_hasher.hash("s3cret-passphrase")
    assert auth._verify_password(stored, "s3cret-passphrase")
    assert not auth._verify_password(stored, "s3cret-passphrasE")
    assert not auth._verify_password("not-an-argon2-hash", "s3cret-passphrase")


def test_an_unknown_user_is_checked_against_a_throwaway_argon2id_hash():
    assert not auth._verify_password(None, "anything")
    dummy = auth._dummy_hash
    assert dummy is not None and dummy.startswith("$argon2id$")
    # Same parameters as real hashes, so the work (and the time) is the same.
    assert not password_hasher.check_needs_rehash(dummy)
    assert not auth._verify_password(None, "anything")
    assert auth._dummy_hash == dummy  # made once, reused
