"""The relay a bridge Node runs on its `listen_port` (docs/nat.md, "Relays").

    STUN binding request ... answered with the asker's address (discovery); when it is a hello from
                             an assigned Node and verifies, that Node is bound to the address
    WireGuard initiation ... from a bound Node: delivered to the assigned Node whose public key its
                             mac1 was made for; the initiator's session index is remembered
    WireGuard response ..... delivered to the initiator; the session is now known, and its two
                             directions are handed to the kernel
    cookie / transport ..... spliced by the kernel (nftables: the sender's address and port plus the
                             receiver index pick the destination; stateless, no conntrack); what
                             reaches this socket anyway (the first packets, a map miss) is forwarded
                             from here by the same tables

Every forwarded packet leaves from the relay's own address and port, which both Nodes dialled, so
their NATs let the answers in. Nothing is decrypted: the relay holds no key of the edges it serves.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from plexsphere import stun
from plexsphere.agent import relay_messages as rm

log = logging.getLogger("plexd.relay")

TABLE = "plexd_relay"
MARK = 0x706C7278  # "plrx": the relay's forwarded packets, for the source rewrite after routing
SESSION_LIFETIME = 600.0  # WireGuard replaces a session's keys every 2 minutes; older indexes are dead
Binding = tuple[str, int]


@dataclass
class RelayedNode:
    node_id: uuid.UUID
    mac1_key: bytes
    hello_key: bytes
    binding: Binding | None = None
    last_hello_ms: int | None = None


@dataclass
class Session:
    initiator: uuid.UUID
    responder: uuid.UUID
    initiator_index: int
    responder_index: int | None = None
    at: float = field(default_factory=time.monotonic)


def ruleset(listen_port: int, source_address: str) -> str:
    """The relay's nftables table: the splice, the source rewrite, and no conntrack for any of it."""
    key = "ip saddr . udp sport . @th,96,32"
    return f"""
table ip {TABLE}
delete table ip {TABLE}
table ip {TABLE} {{
    map dst_addr {{ typeof {key} : ip daddr ; }}
    map dst_port {{ typeof {key} : udp dport ; }}
    counter spliced {{ }}
    chain pre {{
        type filter hook prerouting priority raw; policy accept;
        udp dport {listen_port} @th,64,32 {{ 0x03000000, 0x04000000 }} {key} @dst_addr counter name spliced notrack meta mark set {MARK:#x} ip daddr set {key} map @dst_addr udp dport set {key} map @dst_port
        udp dport {listen_port} notrack
    }}
    chain post {{
        type filter hook postrouting priority srcnat; policy accept;
        meta mark {MARK:#x} ip saddr set {source_address} udp sport set {listen_port}
    }}
    chain out {{
        type filter hook output priority raw; policy accept;
        udp sport {listen_port} notrack
    }}
}}
"""


def elements_script(entries: dict[tuple[Binding, int], Binding]) -> str:
    """One transaction replacing the splice maps' contents with `entries` ((source, receiver index)
    → destination)."""
    lines = [f"flush map ip {TABLE} dst_addr", f"flush map ip {TABLE} dst_port"]
    if entries:
        addr = ", ".join(f"{s[0]} . {s[1]} . {rm.nft_index(i):#x} : {d[0]}" for (s, i), d in sorted(entries.items()))
        port = ", ".join(f"{s[0]} . {s[1]} . {rm.nft_index(i):#x} : {d[1]}" for (s, i), d in sorted(entries.items()))
        lines += [f"add element ip {TABLE} dst_addr {{ {addr} }}", f"add element ip {TABLE} dst_port {{ {port} }}"]
    return "\n".join(lines) + "\n"


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _nft(script: str) -> None:
    proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"nft refused the relay rules: {proc.stderr.strip()}")


class RelayServer(asyncio.DatagramProtocol):
    def __init__(self, listen_port: int, source_address: str, *, kernel: bool = True,
                 clock=time.monotonic, wall_ms=lambda: int(time.time() * 1000)) -> None:
        self.listen_port = listen_port
        self.source_address = source_address
        self.kernel = kernel
        self.clock, self.wall_ms = clock, wall_ms
        self.nodes: dict[uuid.UUID, RelayedNode] = {}
        self.by_binding: dict[Binding, uuid.UUID] = {}
        self.sessions: dict[int, Session] = {}  # by initiator index, then also by responder index
        self.transport: asyncio.DatagramTransport | None = None
        self.installed: dict[tuple[Binding, int], Binding] = {}
        self.stats: dict[str, int] = {"stun": 0, "hellos": 0, "bad_hellos": 0, "handshakes": 0, "forwarded": 0,
                                      "dropped": 0}
        self.pair_handshakes: dict[str, int] = {}

    # -- configuration (from NodeState.bridge.relay.assignments + the peer table) ---------------
    def assign(self, nodes: dict[uuid.UUID, tuple[bytes, bytes]]) -> None:
        """`nodes`: node id → (WireGuard public key, hello key) of every Node this relay serves."""
        for node_id in list(self.nodes):
            if node_id not in nodes:
                gone = self.nodes.pop(node_id)
                if gone.binding is not None:
                    self.by_binding.pop(gone.binding, None)
        for node_id, (public_key, hello_key) in nodes.items():
            entry = self.nodes.get(node_id)
            if entry is None:
                self.nodes[node_id] = RelayedNode(node_id, rm.mac1_key(public_key), hello_key)
            else:
                entry.mac1_key, entry.hello_key = rm.mac1_key(public_key), hello_key
        self._sync_kernel()

    # -- lifecycle ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.kernel:
            _sysctl("/proc/sys/net/ipv4/ip_forward", "1")  # the splice forwards
            # A spliced packet usually leaves by the interface it came in on; the kernel would tell
            # the sender to go direct (an ICMP redirect) — exactly what the Nodes cannot do.
            for conf in Path("/proc/sys/net/ipv4/conf").glob("*/send_redirects"):
                _sysctl(str(conf), "0")
            _nft(ruleset(self.listen_port, self.source_address))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.kernel:
            subprocess.run(["nft", "delete", "table", "ip", TABLE], capture_output=True, timeout=10)

    def spliced_packets(self) -> int | None:
        if not self.kernel:
            return None
        proc = subprocess.run(["nft", "list", "counter", "ip", TABLE, "spliced"], capture_output=True, text=True,
                              timeout=10)
        for word, value in zip(proc.stdout.split(), proc.stdout.split()[1:], strict=False):
            if word == "packets":
                return int(value)
        return None

    # -- packets --------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple) -> None:
        source: Binding = (addr[0], addr[1])
        if stun.message_type(data) == stun.BINDING_REQUEST:
            self._stun(data, source)
            return
        message = rm.parse_wireguard(data)
        sender = self.by_binding.get(source)
        if message is None or sender is None:
            self.stats["dropped"] += 1
            return
        if message.kind == rm.INITIATION:
            self._initiation(data, message, sender)
        elif message.kind == rm.RESPONSE:
            self._response(data, message, sender)
        else:
            session = self.sessions.get(message.receiver or 0)
            target = self._other_end(session, sender) if session else None
            self._send(data, target)

    def _stun(self, data: bytes, source: Binding) -> None:
        txid = stun.txid_of(data)
        if txid is None or stun.parse_attributes(data) is None:
            return
        self.stats["stun"] += 1
        hello = rm.parse_hello(data)
        if hello is not None:
            node = self.nodes.get(hello.node_id)
            if node is not None and rm.verify_hello(hello, node.hello_key, self.wall_ms(), node.last_hello_ms):
                self.stats["hellos"] += 1
                node.last_hello_ms = hello.sent_at_ms
                if node.binding != source:
                    log.info("relay: node %s is at %s:%s", node.node_id, *source)
                    if node.binding is not None:
                        self.by_binding.pop(node.binding, None)
                    previous = self.by_binding.get(source)
                    if previous is not None and previous in self.nodes:
                        self.nodes[previous].binding = None  # that address moved to this Node
                    node.binding = source
                    self.by_binding[source] = node.node_id
                    self._sync_kernel()
            else:
                self.stats["bad_hellos"] += 1
        if self.transport is not None:
            self.transport.sendto(stun.binding_success(txid, source[0], source[1]), source)

    def _initiation(self, data: bytes, message: rm.WgMessage, sender: uuid.UUID) -> None:
        responder = next((n for n in self.nodes.values() if n.node_id != sender and n.binding is not None
                          and rm.mac1_matches(data, n.mac1_key)), None)
        if responder is None or message.sender is None:
            self.stats["dropped"] += 1
            return
        self.sessions[message.sender] = Session(sender, responder.node_id, message.sender, at=self.clock())
        self._send(data, responder.binding)

    def _response(self, data: bytes, message: rm.WgMessage, sender: uuid.UUID) -> None:
        session = self.sessions.get(message.receiver or 0)
        if session is None or session.responder != sender or message.sender is None:
            self.stats["dropped"] += 1
            return
        initiator = self.nodes.get(session.initiator)
        if initiator is None or not rm.mac1_matches(data, initiator.mac1_key):
            self.stats["dropped"] += 1
            return
        session.responder_index, session.at = message.sender, self.clock()
        self.sessions[message.sender] = session
        pair = "|".join(sorted((str(session.initiator), str(session.responder))))
        self.pair_handshakes[pair] = self.pair_handshakes.get(pair, 0) + 1
        self.stats["handshakes"] += 1
        self._send(data, initiator.binding)
        self._sync_kernel()

    def _other_end(self, session: Session, sender: uuid.UUID) -> Binding | None:
        other = session.responder if sender == session.initiator else session.initiator
        node = self.nodes.get(other)
        return node.binding if node else None

    def _send(self, data: bytes, target: Binding | None) -> None:
        if target is None or self.transport is None:
            self.stats["dropped"] += 1
            return
        self.transport.sendto(data, target)
        self.stats["forwarded"] += 1

    # -- the kernel's half ----------------------------------------------------------------------
    def wanted_entries(self) -> dict[tuple[Binding, int], Binding]:
        now = self.clock()
        for index in [i for i, s in self.sessions.items() if now - s.at > SESSION_LIFETIME]:
            del self.sessions[index]
        entries: dict[tuple[Binding, int], Binding] = {}
        for session in {id(s): s for s in self.sessions.values()}.values():  # each is there twice
            if session.responder_index is None:
                continue
            a, b = self.nodes.get(session.initiator), self.nodes.get(session.responder)
            if a is None or b is None or a.binding is None or b.binding is None:
                continue
            entries[(a.binding, session.responder_index)] = b.binding
            entries[(b.binding, session.initiator_index)] = a.binding
        return entries

    def _sync_kernel(self) -> None:
        wanted = self.wanted_entries()
        if wanted == self.installed or not self.kernel:
            self.installed = wanted
            return
        try:
            _nft(elements_script(wanted))
            self.installed = wanted
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log.error("relay: could not update the kernel splice: %s", exc)

    def status(self) -> dict:
        return {
            "listen_port": self.listen_port,
            "nodes": {str(n.node_id): f"{n.binding[0]}:{n.binding[1]}" if n.binding else None
                      for n in self.nodes.values()},
            "pairs": dict(sorted(self.pair_handshakes.items())),
            "spliced_packets": self.spliced_packets(),
            **self.stats,
        }
