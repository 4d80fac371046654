"""What a Node keeps on disk between starts.

    <state_dir>/                0700
      private_key               0600  base64 X25519 private key (generated here, never sent)
      private_key.pending       0600  the next key during a rotation, written before it is offered
      identity.json             0600  node id, NSK, env, mesh IP, Domain CIDR, trusted signing keys
      status.json               0600  last applied peers (for `plexd status`; no secrets)

Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a crash leaves
either the old or the new file, never a torn one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plexsphere.crypto import format_nsk_bearer, x25519_keypair, x25519_public_from_private


class IdentityError(Exception):
    pass


@dataclass
class Identity:
    node_id: uuid.UUID
    nsk: bytes
    env: str
    project_id: uuid.UUID
    resource_id: str
    control_plane_url: str
    mesh_ip: str
    domain_mesh_cidr: str
    signing_key_id: str  # the key the Domain currently signs with
    signing_keys: dict[str, str] = field(default_factory=dict)  # key id -> base64 raw Ed25519 key
    peer_snapshot: list[dict[str, Any]] = field(default_factory=list)  # peers known at registration

    @property
    def bearer(self) -> str:
        return format_nsk_bearer(self.env, self.node_id, self.nsk)

    @property
    def mesh_prefix(self) -> int:
        return int(self.domain_mesh_cidr.split("/", 1)[1])

    @property
    def interface_address(self) -> str:
        return f"{self.mesh_ip}/{self.mesh_prefix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": str(self.node_id),
            "nsk": base64.b64encode(self.nsk).decode(),
            "env": self.env,
            "project_id": str(self.project_id),
            "resource_id": self.resource_id,
            "control_plane_url": self.control_plane_url,
            "mesh_ip": self.mesh_ip,
            "domain_mesh_cidr": self.domain_mesh_cidr,
            "signing_key_id": self.signing_key_id,
            "signing_keys": dict(self.signing_keys),
            "peer_snapshot": self.peer_snapshot,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        try:
            identity = cls(
                node_id=uuid.UUID(data["node_id"]),
                nsk=base64.b64decode(data["nsk"], validate=True),
                env=data["env"],
                project_id=uuid.UUID(data["project_id"]),
                resource_id=data["resource_id"],
                control_plane_url=data["control_plane_url"],
                mesh_ip=data["mesh_ip"],
                domain_mesh_cidr=data["domain_mesh_cidr"],
                signing_key_id=data["signing_key_id"],
                signing_keys=dict(data["signing_keys"]),
                peer_snapshot=list(data.get("peer_snapshot", [])),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise IdentityError(f"identity.json is malformed ({type(exc).__name__}: {exc})") from None
        if len(identity.nsk) != 32 or identity.signing_key_id not in identity.signing_keys:
            raise IdentityError("identity.json is malformed (bad NSK length or unknown signing key id)")
        return identity

    def __repr__(self) -> str:  # the NSK must never reach a log line
        return f"Identity(node_id={self.node_id}, mesh_ip={self.mesh_ip}, env={self.env})"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IdentityStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.identity_path = self.dir / "identity.json"
        self.key_path = self.dir / "private_key"
        self.pending_key_path = self.dir / "private_key.pending"
        self.status_path = self.dir / "status.json"

    def ensure_dir(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)

    # -- identity -------------------------------------------------------------------------------
    def load(self) -> Identity | None:
        try:
            text = self.identity_path.read_text()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            raise IdentityError(f"{self.identity_path} is not valid JSON") from None
        return Identity.from_json(data)

    def save(self, identity: Identity) -> None:
        self.ensure_dir()
        atomic_write(self.identity_path, json.dumps(identity.to_json(), indent=2).encode() + b"\n")

    # -- private keys ---------------------------------------------------------------------------
    def _read_key(self, path: Path) -> bytes | None:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise IdentityError(f"{path} does not hold a base64 key") from None
        if len(raw) != 32:
            raise IdentityError(f"{path} does not hold a 32-byte key")
        return raw

    def private_key(self) -> bytes | None:
        return self._read_key(self.key_path)

    def load_or_create_private_key(self) -> bytes:
        """The key registration offers; kept across a failed registration so a retry offers the
        same public key."""
        existing = self.private_key()
        if existing is not None:
            return existing
        self.ensure_dir()
        private, _public = x25519_keypair()
        atomic_write(self.key_path, base64.b64encode(private) + b"\n")
        return private

    def pending_private_key(self) -> bytes | None:
        return self._read_key(self.pending_key_path)

    def create_pending_private_key(self) -> bytes:
        private, _public = x25519_keypair()
        atomic_write(self.pending_key_path, base64.b64encode(private) + b"\n")
        return private

    def promote_pending_private_key(self) -> bytes:
        """The control plane accepted the pending key: it becomes the key (one atomic rename)."""
        pending = self.pending_private_key()
        if pending is None:
            raise IdentityError("no pending private key to promote")
        os.replace(self.pending_key_path, self.key_path)
        _fsync_dir(self.dir)
        return pending

    def discard_pending_private_key(self) -> None:
        self.pending_key_path.unlink(missing_ok=True)

    # -- status (for `plexd status`) ------------------------------------------------------------
    def write_status(self, status: dict[str, Any]) -> None:
        # Not fsynced: it is a convenience snapshot rewritten on every change.
        atomic_write(self.status_path, json.dumps(status, indent=2, default=str).encode(), durable=False)

    def read_status(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, ValueError):
            return None


def public_key_of(private_key: bytes) -> bytes:
    return x25519_public_from_private(private_key)
