"""Kernel WireGuard: the link is made with `ip link add type wireguard`, the device is configured
and read with the `wg` tool. Keys travel to `wg` on stdin, never on its command line (which any
local user can read from /proc)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from plexsphere.agent.model import (
    ActualState,
    AddAddress,
    CreateInterface,
    Operation,
    PeerConfig,
    PeerStatus,
    RemoveAddress,
    RemovePeer,
    SetLinkUp,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
    key_b64,
    key_from_b64,
    normalise_cidr,
)
from plexsphere.agent.wireguard import iproute
from plexsphere.agent.wireguard.base import WireGuardBackend, WireGuardError


def kernel_wireguard_available() -> bool:
    return Path("/sys/module/wireguard").exists() and shutil.which("wg") is not None


def parse_dump(text: str, now: float) -> tuple[bytes | None, int | None, dict[bytes, PeerConfig], dict[bytes, PeerStatus]]:
    """`wg show <if> dump`: the interface line, then one tab-separated line per peer."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None, None, {}, {}
    private, _public, port, _fwmark = lines[0].split("\t")[:4]
    peers: dict[bytes, PeerConfig] = {}
    status: dict[bytes, PeerStatus] = {}
    for line in lines[1:]:
        pub, psk, endpoint, allowed, handshake, rx, tx, keepalive = line.split("\t")[:8]
        key = key_from_b64(pub)
        peers[key] = PeerConfig(
            public_key=key,
            allowed_ips=tuple(a for a in allowed.split(",") if a and a != "(none)"),
            endpoint=None if endpoint == "(none)" else endpoint,
            preshared_key=None if psk == "(none)" else key_from_b64(psk),
            persistent_keepalive=0 if keepalive == "off" else int(keepalive),
        )
        hs = int(handshake)
        status[key] = PeerStatus(latest_handshake_age=None if hs == 0 else max(0.0, now - hs),
                                 rx_bytes=int(rx), tx_bytes=int(tx))
    return (None if private == "(none)" else key_from_b64(private)), int(port), peers, status


class KernelBackend(WireGuardBackend):
    name = "kernel"

    def _wg(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["wg", *args], input=stdin, capture_output=True, text=True, timeout=15)
        if check and proc.returncode != 0:
            raise WireGuardError(f"wg {args[0] if args else ''} failed: {proc.stderr.strip()}")
        return proc

    def read(self) -> ActualState:
        if not iproute.link_exists(self.ifname):
            return ActualState(exists=False)
        proc = self._wg("show", self.ifname, "dump", check=False)
        if proc.returncode != 0:
            raise WireGuardError(f"{self.ifname} exists but is not a WireGuard interface")
        private, port, peers, status = parse_dump(proc.stdout, time.time())
        return ActualState(
            exists=True,
            up=iproute.link_is_up(self.ifname),
            private_key=private,
            listen_port=port,
            addresses=frozenset(normalise_cidr(a) for a in iproute.addresses(self.ifname)),
            peers=peers,
            status=status,
        )

    def apply(self, ops: Sequence[Operation]) -> None:
        for op in ops:
            if isinstance(op, CreateInterface):
                iproute.run_ip("link", "add", "dev", self.ifname, "type", "wireguard")
            elif isinstance(op, SetPrivateKey):
                self._wg("set", self.ifname, "private-key", "/dev/stdin", stdin=key_b64(op.private_key))
            elif isinstance(op, SetListenPort):
                self._wg("set", self.ifname, "listen-port", str(op.port))
            elif isinstance(op, RemovePeer):
                self._wg("set", self.ifname, "peer", key_b64(op.public_key), "remove")
            elif isinstance(op, UpsertPeer):
                self._upsert(op.peer)
            elif isinstance(op, AddAddress):
                iproute.add_address(self.ifname, op.cidr)
            elif isinstance(op, RemoveAddress):
                iproute.remove_address(self.ifname, op.cidr)
            elif isinstance(op, SetLinkUp):
                iproute.set_up(self.ifname)

    def _upsert(self, peer: PeerConfig) -> None:
        args = ["set", self.ifname, "peer", key_b64(peer.public_key)]
        # An empty key file clears the PSK; wg reads the key from stdin otherwise.
        args += ["preshared-key", "/dev/stdin" if peer.preshared_key else "/dev/null"]
        args += ["persistent-keepalive", str(peer.persistent_keepalive or "off")]
        args += ["allowed-ips", ",".join(peer.allowed_ips)]
        if peer.endpoint:
            args += ["endpoint", peer.endpoint]
        self._wg(*args, stdin=key_b64(peer.preshared_key) if peer.preshared_key else None)

    def down(self) -> None:
        iproute.delete_link(self.ifname)
