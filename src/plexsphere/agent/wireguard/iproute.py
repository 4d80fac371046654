"""The few iproute2 calls the agent needs (address, link state), through `ip -j` so output is
parsed as JSON rather than scraped."""

from __future__ import annotations

import ipaddress
import json
import subprocess


class IpCommandError(Exception):
    pass


def run_ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if check and proc.returncode != 0:
        raise IpCommandError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def link_exists(ifname: str) -> bool:
    return run_ip("link", "show", "dev", ifname, check=False).returncode == 0


def link_is_up(ifname: str) -> bool:
    proc = run_ip("-j", "link", "show", "dev", ifname, check=False)
    if proc.returncode != 0:
        return False
    links = json.loads(proc.stdout or "[]")
    return bool(links) and "UP" in links[0].get("flags", [])


def addresses(ifname: str) -> frozenset[str]:
    """Global-scope addresses only: link-local ones are the kernel's, not ours to manage."""
    proc = run_ip("-j", "addr", "show", "dev", ifname, check=False)
    if proc.returncode != 0:
        return frozenset()
    found = set()
    for link in json.loads(proc.stdout or "[]"):
        for info in link.get("addr_info", []):
            iface = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")
            if not iface.ip.is_link_local:
                found.add(str(iface))
    return frozenset(found)


def add_address(ifname: str, cidr: str) -> None:
    run_ip("addr", "replace", cidr, "dev", ifname)


def remove_address(ifname: str, cidr: str) -> None:
    run_ip("addr", "del", cidr, "dev", ifname, check=False)


def set_up(ifname: str) -> None:
    run_ip("link", "set", "dev", ifname, "up")


def delete_link(ifname: str) -> None:
    run_ip("link", "del", "dev", ifname, check=False)


def default_route_address(family: int = 4) -> str | None:
    """The primary address of the interface that holds the default route: the underlay address
    peers can reach this node at when nothing better is configured. No packet is sent."""
    proc = run_ip(f"-{family}", "-j", "route", "show", "default", check=False)
    if proc.returncode != 0:
        return None
    routes = json.loads(proc.stdout or "[]")
    if not routes or "dev" not in routes[0]:
        return None
    if routes[0].get("prefsrc"):
        return routes[0]["prefsrc"]
    for cidr in sorted(addresses(routes[0]["dev"])):
        iface = ipaddress.ip_interface(cidr)
        if iface.version == family and not iface.ip.is_loopback:
            return str(iface.ip)
    return None
