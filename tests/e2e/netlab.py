"""Network namespaces for the end-to-end tests, in the routed layout that works on these machines
(design.md, "End-to-end harness facts"): one veth pair per namespace to the host, a /30 from the
documentation range 198.51.100.0/24 each, the namespace's default route via the host end, IPv4
forwarding on the host while the lab exists.

Machines here sit in another documentation range (eth0 was 192.0.2.2/24), hence TEST-NET-2; in
case a host lives in it anyway, the /30s are chosen from the top of the range, skipping every block
that holds an address the host has, routes through or has seen as a neighbour. Everything is named
with the `pxe2e` prefix and every process started is recorded under RUN_DIR, so
tests/e2e/cleanup.sh can remove what a crashed run left behind."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "pxe2e"
RUN_DIR = Path("/tmp/plexsphere-e2e")
PID_DIR = RUN_DIR / "pids"
FORWARD_SAVE = RUN_DIR / "ip_forward.saved"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
REQUIRED_TOOLS = ("ip", "wg", "wireguard-go", "ping")


def missing_prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces need CAP_NET_ADMIN)")
    missing += [f"`{tool}` on PATH" for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun (wireguard-go needs TUN)")
    return missing


def run(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


UNDERLAY = ipaddress.ip_network("198.51.100.0/24")


def addresses_in_use() -> set[ipaddress.IPv4Address]:
    """Every IPv4 address the host owns, routes via, routes to as a host, or has as a neighbour."""
    found: set[ipaddress.IPv4Address] = set()

    def collect(text: str) -> None:
        try:
            found.add(ipaddress.IPv4Address(text.split("/")[0]))
        except ValueError:
            pass

    for link in json.loads(run("ip", "-4", "-j", "addr", "show").stdout or "[]"):
        if link.get("ifname", "").startswith(PREFIX):
            continue  # a leftover of ours is removed before its block is reused
        for info in link.get("addr_info", []):
            collect(info.get("local", ""))
    for route in json.loads(run("ip", "-4", "-j", "route", "show", "table", "all").stdout or "[]"):
        if str(route.get("dev", "")).startswith(PREFIX):
            continue
        collect(route.get("gateway", ""))
        collect(route.get("prefsrc", ""))
        if "/" not in route.get("dst", "/"):
            collect(route["dst"])
    for neigh in json.loads(run("ip", "-4", "-j", "neigh", "show").stdout or "[]"):
        if not str(neigh.get("dev", "")).startswith(PREFIX):
            collect(neigh.get("dst", ""))
    return found


def free_blocks(count: int) -> list[int]:
    """Offsets of `count` /30 blocks of 198.51.100.0/24 holding no address in use, highest first."""
    used = addresses_in_use()
    blocks = []
    for offset in range(252, 0, -4):
        block = ipaddress.ip_network(f"198.51.100.{offset}/30")
        if not any(address in block for address in used):
            blocks.append(offset)
        if len(blocks) == count:
            return blocks
    raise RuntimeError("no free /30 blocks left in 198.51.100.0/24 for the end-to-end lab")


@dataclass(frozen=True)
class Namespace:
    name: str  # short label, e.g. "a"
    block: int  # offset of its /30 in 198.51.100.0/24: host end = block+1, namespace end = block+2

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def host_veth(self) -> str:
        return f"{PREFIX}-h{self.name}"

    @property
    def ns_veth(self) -> str:
        return f"{PREFIX}-n{self.name}"

    @property
    def host_address(self) -> str:
        return f"198.51.100.{self.block + 1}"

    @property
    def address(self) -> str:
        return f"198.51.100.{self.block + 2}"

    def exec(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.netns, *args, check=check, timeout=timeout)

    def ping(self, address: str, count: int = 1, wait: float = 1) -> bool:
        return self.exec("ping", "-n", "-q", "-c", str(count), "-W", str(wait), address,
                         check=False, timeout=count * wait + 5).returncode == 0

    def spawn(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.netns, *args], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        record_pid(proc.pid)
        return proc


def record_pid(pid: int) -> None:
    PID_DIR.mkdir(parents=True, exist_ok=True)
    (PID_DIR / f"{pid}.pid").write_text(str(pid))


def forget_pid(pid: int) -> None:
    (PID_DIR / f"{pid}.pid").unlink(missing_ok=True)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    forget_pid(proc.pid)


class NetLab:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.namespaces: list[Namespace] = []
        self._saved_forward: str | None = None

    def __getitem__(self, name: str) -> Namespace:
        return next(ns for ns in self.namespaces if ns.name == name)

    def up(self) -> NetLab:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        for name in self.names:  # leftovers of an earlier crashed run, before picking free blocks
            self._remove(Namespace(name, 0))
        self.namespaces = [Namespace(n, b) for n, b in zip(self.names, free_blocks(len(self.names)), strict=True)]
        self._saved_forward = IP_FORWARD.read_text().strip()
        if not FORWARD_SAVE.exists():  # keep the value from before the first lab, for cleanup.sh
            FORWARD_SAVE.write_text(self._saved_forward)
        IP_FORWARD.write_text("1")
        for ns in self.namespaces:
            run("ip", "netns", "add", ns.netns)
            run("ip", "link", "add", ns.host_veth, "type", "veth", "peer", "name", ns.ns_veth)
            run("ip", "link", "set", ns.ns_veth, "netns", ns.netns)
            run("ip", "addr", "add", f"{ns.host_address}/30", "dev", ns.host_veth)
            run("ip", "link", "set", ns.host_veth, "up")
            ns.exec("ip", "addr", "add", f"{ns.address}/30", "dev", ns.ns_veth)
            ns.exec("ip", "link", "set", ns.ns_veth, "up")
            ns.exec("ip", "link", "set", "lo", "up")
            ns.exec("ip", "route", "add", "default", "via", ns.host_address)
        return self

    @staticmethod
    def _remove(ns: Namespace) -> None:
        # Deleting the namespace destroys its TUN devices, which makes their wireguard-go exit.
        run("ip", "netns", "del", ns.netns, check=False)
        run("ip", "link", "del", ns.host_veth, check=False)

    def down(self) -> None:
        for ns in self.namespaces:
            self._remove(ns)
        for sock in Path("/var/run/wireguard").glob(f"{PREFIX}-*.sock"):
            sock.unlink(missing_ok=True)
        if self._saved_forward is not None:
            IP_FORWARD.write_text(self._saved_forward)
            FORWARD_SAVE.unlink(missing_ok=True)

    def __enter__(self) -> NetLab:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()
