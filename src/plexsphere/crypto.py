"""Every cryptographic primitive plexsphere uses, in one place.

- Keyring: the key-encryption keys (KEK, AES-256-GCM, versioned) that wrap NSKs, signing keys and
  PSKs at rest, plus the server secret behind every HMAC lookup digest. Shared by all server
  processes through one file (PLEXSPHERE_KEK_FILE), so any process can unwrap what another wrapped.
- Wrapped blobs are self-describing: b"W1" ‖ kek_version (u32) ‖ nonce (12) ‖ ciphertext+tag,
  bound to their row by associated data so a blob copied to another row does not unwrap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_WRAP_MAGIC = b"W1"


class KeyringError(Exception):
    pass


@dataclass(frozen=True)
class Keyring:
    keks: dict[int, bytes]
    hmac_secret: bytes

    @property
    def active_version(self) -> int:
        return max(self.keks)

    # -- wrapping -------------------------------------------------------------------------------
    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        version = self.active_version
        nonce = os.urandom(12)
        sealed = AESGCM(self.keks[version]).encrypt(nonce, plaintext, aad)
        return _WRAP_MAGIC + struct.pack(">I", version) + nonce + sealed

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        blob = bytes(blob)
        if blob[:2] != _WRAP_MAGIC or len(blob) < 2 + 4 + 12 + 16:
            raise KeyringError("not a wrapped blob")
        (version,) = struct.unpack(">I", blob[2:6])
        kek = self.keks.get(version)
        if kek is None:
            raise KeyringError(f"wrap key version {version} is not in the keyring")
        return AESGCM(kek).decrypt(blob[6:18], blob[18:], aad)

    @staticmethod
    def blob_version(blob: bytes) -> int:
        return struct.unpack(">I", bytes(blob)[2:6])[0]

    # -- lookup digests -------------------------------------------------------------------------
    def digest(self, purpose: str, value: bytes | str) -> bytes:
        """Keyed digest for O(1) lookups of high-entropy secrets (tokens, NSKs). `purpose`
        separates domains so one secret's digest never matches another kind's."""
        if isinstance(value, str):
            value = value.encode()
        return hmac.new(self.hmac_secret, purpose.encode() + b"\x00" + value, hashlib.sha256).digest()

    def sign_blob(self, purpose: str, value: bytes) -> bytes:
        return self.digest("sig:" + purpose, value)

    # -- file -----------------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> Keyring:
        return cls(keks={1: os.urandom(32)}, hmac_secret=os.urandom(32))

    def dumps(self) -> str:
        lines = ["# plexsphere keyring: KEK versions and the HMAC server secret. Keep secret; back up."]
        lines += [f"kek {v} {base64.b64encode(k).decode()}" for v, k in sorted(self.keks.items())]
        lines.append(f"hmac {base64.b64encode(self.hmac_secret).decode()}")
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str) -> Keyring:
        keks: dict[int, bytes] = {}
        secret: bytes | None = None
        for raw in text.splitlines():
            parts = raw.split()
            if not parts or parts[0].startswith("#"):
                continue
            try:
                if parts[0] == "kek" and len(parts) == 3:
                    keks[int(parts[1])] = base64.b64decode(parts[2], validate=True)
                elif parts[0] == "hmac" and len(parts) == 2:
                    secret = base64.b64decode(parts[1], validate=True)
                else:
                    raise KeyringError(f"unrecognised keyring line starting {parts[0]!r}")
            except (ValueError, binascii.Error) as exc:
                raise KeyringError("malformed keyring line") from exc
        if not keks or secret is None or any(len(k) != 32 for k in keks.values()):
            raise KeyringError("keyring needs at least one 32-byte kek line and an hmac line")
        return cls(keks=keks, hmac_secret=secret)

    @classmethod
    def load_or_create(cls, path: Path, *, create: bool) -> Keyring:
        if path.exists():
            return cls.loads(path.read_text())
        if not create:
            raise KeyringError(f"keyring file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        keyring = cls.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(keyring.dumps())
        return keyring


# -- random secrets -------------------------------------------------------------------------------
def random_bytes(n: int = 32) -> bytes:
    return os.urandom(n)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def base32_lower(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


# -- WireGuard / X25519 ---------------------------------------------------------------------------
def parse_wireguard_public_key(text: object) -> bytes | None:
    """32 raw bytes from the contract's 44-char padded standard base64, or None when the text has
    the wrong shape, does not decode to 32 bytes, or is all zeroes."""
    if not isinstance(text, str) or len(text) != 44 or not text.endswith("="):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32 or raw == bytes(32):
        return None
    if base64.b64encode(raw).decode() != text:  # non-canonical trailing bits
        return None
    return raw


def x25519_keypair() -> tuple[bytes, bytes]:
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw_private, raw_public


def x25519_public_from_private(raw_private: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(raw_private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


# -- Ed25519 (Domain signing keys) ----------------------------------------------------------------
def ed25519_generate() -> tuple[bytes, bytes]:
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw_private, private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(raw_private: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(raw_private).sign(message)


def ed25519_verify(raw_public: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# -- NSK bearer (DECISIONS 1) ---------------------------------------------------------------------
NSK_BYTES = 32


def format_nsk_bearer(env: str, node_id: uuid.UUID, nsk: bytes) -> str:
    return f"nsk_{env}_{b64url(node_id.bytes + nsk)}"


@dataclass(frozen=True)
class NskCredential:
    node_id: uuid.UUID | None  # None when the bare base64 NSK was presented
    nsk: bytes


def parse_nsk_bearer(token: str) -> NskCredential | None:
    """Accepts the canonical `nsk_<env>_<b64url(node id ‖ nsk)>` and the bare base64 NSK."""
    if token.startswith("nsk_"):
        parts = token.split("_", 2)
        if len(parts) != 3 or not parts[1].isalpha() or not parts[1].islower():
            return None
        try:
            raw = b64url_decode(parts[2])
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 16 + NSK_BYTES:
            return None
        return NskCredential(node_id=uuid.UUID(bytes=raw[:16]), nsk=raw[16:])
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != NSK_BYTES:
        return None
    return NskCredential(node_id=None, nsk=raw)


# -- PSKs (DECISIONS 6) ---------------------------------------------------------------------------
def derive_edge_psk(node_a: uuid.UUID, psk_a: bytes, node_b: uuid.UUID, psk_b: bytes) -> bytes:
    """Both ends of an edge get the same 32 bytes: inputs ordered by node id."""
    (first_id, first), (second_id, second) = sorted([(node_a, psk_a), (node_b, psk_b)], key=lambda p: p[0].bytes)
    return HKDF(
        algorithm=SHA256(), length=32, salt=first_id.bytes + second_id.bytes, info=b"plexsphere edge psk v1"
    ).derive(first + second)


def seal_for_node(nsk: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """12-byte nonce ‖ AES-256-GCM(ciphertext ‖ tag) under the node's NSK."""
    nonce = os.urandom(12)
    return nonce + AESGCM(nsk).encrypt(nonce, plaintext, aad or None)


def open_from_server(nsk: bytes, envelope: bytes, aad: bytes = b"") -> bytes:
    return AESGCM(nsk).decrypt(envelope[:12], envelope[12:], aad or None)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
