"""Mesh addresses as host offsets inside a Domain's CIDR (DECISIONS 9). Pure.

Offset 0 is the network address and is never handed out; for IPv4 the broadcast address (the last
one) is excluded too, except in /31 and /32 where there is none. The allocator itself runs in
PostgreSQL (db/migrations/sql/0001_initial/30_enrolment.sql `register_node`): lowest released offset first, else the
pool's high-water mark, so the lowest free address is always the one handed out.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def capacity(cidr: str) -> int:
    """The highest usable offset (= the number of assignable addresses). Mirrors SQL host_capacity."""
    network = ipaddress.ip_network(cidr)
    if network.version == 4:
        if network.prefixlen >= 31:
            return network.num_addresses - 1
        return network.num_addresses - 2
    return min(network.num_addresses - 1, 2**63 - 1)


def address_at(cidr: str, offset: int) -> IPAddress:
    if not 1 <= offset <= capacity(cidr):
        raise ValueError(f"offset {offset} is outside the usable range of {cidr}")
    return ipaddress.ip_network(cidr).network_address + offset


def offset_of(cidr: str, address: str) -> int:
    network = ipaddress.ip_network(cidr)
    ip = ipaddress.ip_address(address)
    if ip not in network:
        raise ValueError(f"{address} is not inside {cidr}")
    offset = int(ip) - int(network.network_address)
    if not 1 <= offset <= capacity(cidr):
        raise ValueError(f"{address} is not an assignable address of {cidr}")
    return offset
