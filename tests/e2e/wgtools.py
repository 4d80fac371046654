"""Plain wireguard-go interfaces for the NAT lab's relay tests (no plexd): keys, an interface in a
namespace, a peer, and a pcap reader to look at what a relay forwarded."""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.netlab import Namespace, run, wait_for


def genkey() -> tuple[str, str]:
    private = run("wg", "genkey").stdout.strip()
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True).stdout.strip()
    return private, public


@dataclass
class WgEnd:
    ns: Namespace
    ifname: str
    mesh_ip: str
    private: str
    public: str
    key_file: Path

    @classmethod
    def start(cls, ns: Namespace, ifname: str, mesh_ip: str, run_dir: Path) -> tuple[WgEnd, object]:
        private, public = genkey()
        key_file = run_dir / f"{ifname}.key"
        key_file.write_text(private + "\n")
        key_file.chmod(0o600)
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        proc = ns.spawn(["wireguard-go", "-f", ifname], run_dir / f"{ifname}.log", env=env)
        wait_for(lambda: Path(f"/var/run/wireguard/{ifname}.sock").exists(), 10, f"{ifname}'s UAPI socket")
        ns.exec("ip", "addr", "add", f"{mesh_ip}/24", "dev", ifname)
        ns.exec("ip", "link", "set", ifname, "mtu", "1420", "up")
        run("wg", "set", ifname, "private-key", str(key_file), "listen-port", "51820")
        return cls(ns, ifname, mesh_ip, private, public, key_file), proc

    def add_peer(self, other: WgEnd, endpoint: str, keepalive: int, psk_file: Path) -> None:
        run("wg", "set", self.ifname, "peer", other.public, "allowed-ips", f"{other.mesh_ip}/32", "endpoint", endpoint,
            "persistent-keepalive", str(keepalive), "preshared-key", str(psk_file))


def udp_packets(pcap: Path) -> list[tuple[str, int, str, int, bytes]]:
    """(src, sport, dst, dport, payload) of every IPv4/UDP packet of an Ethernet pcap file, and
    ("icmp", 0, dst, 0, b"src") entries for ICMP so a caller can look for leaked plaintext."""
    data = pcap.read_bytes()
    out = []
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        proto = ip[9]
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        if proto == 17:
            sport, dport = struct.unpack_from("!HH", ip, ihl)
            out.append((src, sport, dst, dport, ip[ihl + 8:]))
        elif proto == 1:
            out.append(("icmp", 0, dst, 0, src.encode()))
    return out
