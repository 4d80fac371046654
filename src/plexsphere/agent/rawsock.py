"""Sending UDP from the WireGuard port without owning it (docs/nat.md, "Discovery").

wireguard-go or the kernel holds the WireGuard UDP socket, and a second socket cannot bind that
port. A raw IPPROTO_UDP socket can still send a datagram whose UDP source port is the WireGuard
port: the kernel adds the IP header (source address by routing), the NAT maps it exactly like the
WireGuard socket's own packets, and the answer comes back to that port — where WireGuard drops it
as no message of its own, and a raw socket may read a copy (NetBird shares its port the same way).
Needs CAP_NET_RAW, which plexd has (it programs interfaces). IPv4 only, like the NAT lab."""

from __future__ import annotations

import ctypes
import ipaddress
import select
import socket
import struct
import time

from plexsphere import stun

SO_ATTACH_FILTER = 26


def udp_datagram(source_port: int, dest_port: int, payload: bytes) -> bytes:
    """A UDP header and payload; checksum 0 ("none", allowed for IPv4) so the kernel's choice of
    source address cannot make it wrong."""
    return struct.pack("!HHHH", source_port, dest_port, 8 + len(payload), 0) + payload


class RawSender:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)

    def send(self, source_port: int, destination: tuple[str, int], payload: bytes) -> None:
        ip = str(ipaddress.IPv4Address(destination[0]))
        self.sock.sendto(udp_datagram(source_port, destination[1], payload), (ip, 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stun_filter(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF for a raw IPv4 UDP socket (packets start at the IP header): keep unfragmented
    UDP datagrams to `port` whose payload carries the STUN magic cookie at offset 4, drop the rest in
    the kernel — WireGuard's own traffic on that port never reaches userspace."""
    return [
        (0x30, 0, 0, 9),  # ldb [9]: protocol
        (0x15, 0, 7, 17),  # UDP?
        (0x28, 0, 0, 6),  # ldh [6]: flags and fragment offset
        (0x45, 5, 0, 0x1FFF),  # a fragment: drop
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf): X = IP header length
        (0x48, 0, 0, 2),  # ldh [x+2]: UDP destination port
        (0x15, 0, 2, port),
        (0x40, 0, 0, 12),  # ld [x+12]: payload bytes 4..8
        (0x15, 1, 0, stun.MAGIC_COOKIE),
        (0x06, 0, 0, 0),  # drop
        (0x06, 0, 0, 0xFFFF),  # accept
    ]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class RawReceiver:
    """Reads copies of the STUN answers that arrive at the WireGuard port (whoever owns it)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        program = stun_filter(port)
        self._filter = (_SockFilter * len(program))(*program)  # kept alive with the socket
        fprog = _SockFprog(len(program), self._filter)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(ctypes.string_at(ctypes.addressof(fprog),
                                                                                            ctypes.sizeof(fprog))))
        # Packets queued before the filter was attached are not filtered: drain them.
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except BlockingIOError:
            pass

    def receive(self, timeout: float) -> list[tuple[tuple[str, int], bytes]]:
        """((source ip, source port), UDP payload) of what arrived within `timeout`."""
        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            try:
                packet = self.sock.recv(65535)
            except BlockingIOError:
                continue
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) < ihl + 8:
                continue
            sport = struct.unpack_from("!H", packet, ihl)[0]
            out.append(((socket.inet_ntoa(packet[12:16]), sport), packet[ihl + 8:]))
        return out

    def close(self) -> None:
        self.sock.close()
