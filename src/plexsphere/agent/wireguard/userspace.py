"""wireguard-go, configured through its UAPI socket.

wireguard-go is started detached (own session) so the interface outlives plexd: a restart or a
SIGTERM leaves the tunnels up, as the kernel backend would. `down()` deletes the link, which makes
wireguard-go exit on its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from plexsphere.agent.model import (
    ActualState,
    AddAddress,
    CreateInterface,
    Operation,
    RemoveAddress,
    RemovePeer,
    SetLinkUp,
    SetListenPort,
    SetPrivateKey,
    UpsertPeer,
    normalise_cidr,
)
from plexsphere.agent.wireguard import iproute, uapi
from plexsphere.agent.wireguard.base import WireGuardBackend, WireGuardError

_UAPI_OPS = (SetPrivateKey, SetListenPort, RemovePeer, UpsertPeer)


def resolve_endpoint(endpoint: str) -> str:
    """UAPI takes literal addresses only; a relay given by name is resolved here."""
    host, _, port = endpoint.rpartition(":")
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, int(port), type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise WireGuardError(f"cannot resolve endpoint host {bare!r}") from exc
    family, _, _, _, sockaddr = infos[0]
    return f"[{sockaddr[0]}]:{port}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{port}"


class UserspaceBackend(WireGuardBackend):
    name = "userspace"

    def __init__(self, ifname: str, *, binary: str = "wireguard-go", run_dir: Path | None = None,
                 socket_dir: Path = uapi.SOCKET_DIR, start_timeout: float = 10.0) -> None:
        super().__init__(ifname)
        self.binary = binary
        self.run_dir = run_dir  # where wireguard-go's pid and log go (the agent's state dir)
        self.socket = uapi.socket_path(ifname, socket_dir)
        self.start_timeout = start_timeout

    # -- reading --------------------------------------------------------------------------------
    def _get(self) -> uapi.DeviceDump | None:
        try:
            reply = uapi.exchange(self.socket, b"get=1\n\n")
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        return uapi.parse_get(reply, time.time())

    def read(self) -> ActualState:
        dump = self._get()
        if dump is None:
            return ActualState(exists=False)
        return ActualState(
            exists=True,
            up=iproute.link_is_up(self.ifname),
            private_key=dump.private_key,
            listen_port=dump.listen_port,
            addresses=frozenset(normalise_cidr(a) for a in iproute.addresses(self.ifname)),
            peers=dump.peers,
            status=dump.status,
        )

    # -- writing --------------------------------------------------------------------------------
    def apply(self, ops: Sequence[Operation]) -> None:
        if any(isinstance(op, CreateInterface) for op in ops):
            self._start()
        wg_ops = [op for op in ops if isinstance(op, _UAPI_OPS)]
        if wg_ops:
            reply = uapi.exchange(self.socket, uapi.encode_set(wg_ops, resolve_endpoint))
            errno = uapi.parse_errno(reply)
            if errno != 0:
                raise WireGuardError(f"wireguard-go rejected the configuration (errno {errno})")
        for op in ops:
            if isinstance(op, AddAddress):
                iproute.add_address(self.ifname, op.cidr)
            elif isinstance(op, RemoveAddress):
                iproute.remove_address(self.ifname, op.cidr)
            elif isinstance(op, SetLinkUp):
                iproute.set_up(self.ifname)

    def _start(self) -> None:
        if shutil.which(self.binary) is None:
            raise WireGuardError(f"{self.binary} is not installed (the userspace backend needs it)")
        if self.socket.exists():
            # A socket nobody answers on is left over from a killed wireguard-go; it would make the
            # new process fail to bind.
            self.socket.unlink()
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        log = open(self.run_dir / "wireguard-go.log", "ab") if self.run_dir else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen([self.binary, self.ifname], env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        if self.run_dir:
            (self.run_dir / "wireguard-go.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise WireGuardError(f"wireguard-go exited with status {proc.returncode} while starting")
            if self._get() is not None:
                return
            time.sleep(0.05)
        raise WireGuardError(f"wireguard-go did not open {self.socket} within {self.start_timeout}s")

    def down(self) -> None:
        iproute.delete_link(self.ifname)
        deadline = time.monotonic() + 5
        while self.socket.exists() and time.monotonic() < deadline:
            if self._get() is None:
                break
            time.sleep(0.05)
