"""WireGuard backends behind one interface: kernel (`ip` + `wg`), userspace (wireguard-go via its
UAPI socket) and an in-memory fake for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from plexsphere.agent.wireguard.base import WireGuardBackend, WireGuardError
from plexsphere.agent.wireguard.fake import FakeBackend
from plexsphere.agent.wireguard.kernel import KernelBackend, kernel_wireguard_available
from plexsphere.agent.wireguard.uapi import socket_path
from plexsphere.agent.wireguard.userspace import UserspaceBackend

BACKEND_NAMES = ("auto", "kernel", "userspace", "fake")


def make_backend(kind: str, ifname: str, *, run_dir: Path | None = None,
                 wireguard_go: str = "wireguard-go") -> WireGuardBackend:
    if kind == "auto":
        if socket_path(ifname).exists():  # already run by wireguard-go: keep it
            kind = "userspace"
        elif kernel_wireguard_available():
            kind = "kernel"
        elif shutil.which(wireguard_go):
            kind = "userspace"
        else:
            raise WireGuardError("no WireGuard available: load the kernel module or install wireguard-go")
    if kind == "kernel":
        return KernelBackend(ifname)
    if kind == "userspace":
        return UserspaceBackend(ifname, binary=wireguard_go, run_dir=run_dir)
    if kind == "fake":
        return FakeBackend(ifname)
    raise WireGuardError(f"unknown WireGuard backend {kind!r}; choose one of {', '.join(BACKEND_NAMES)}")


__all__ = ["BACKEND_NAMES", "FakeBackend", "KernelBackend", "UserspaceBackend", "WireGuardBackend",
           "WireGuardError", "make_backend"]
