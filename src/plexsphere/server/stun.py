"""A STUN responder in the control plane (docs/nat.md): answers binding requests on
`PLEXSPHERE_STUN_PORT` (0 = off) and, for RFC 5780's change-port test, from the next port up. It is
one of the observers plexd compares to classify its NAT; it keeps no state, so any number of server
processes may answer on the same ports (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import logging

from plexsphere import stun
from plexsphere.server.runtime import Runtime

log = logging.getLogger(__name__)


class _Responder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.other: _Responder | None = None  # the socket on the other port (change-port answers)
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if stun.message_type(data) != stun.BINDING_REQUEST or stun.parse_attributes(data) is None:
            return  # not ours: never answer what is not a well-formed binding request
        txid = stun.txid_of(data)
        assert txid is not None
        answer = stun.binding_success(txid, addr[0], addr[1])
        via = self.other if stun.wants_change_port(data) and self.other is not None else self
        if via.transport is not None:
            via.transport.sendto(answer, addr)
            self.answered += 1


async def start(runtime: Runtime) -> None:
    port = runtime.settings.stun_port
    runtime.extras["stun"] = []
    if not port:
        return
    loop = asyncio.get_running_loop()
    responders = []
    try:
        for p in (port, port + 1):
            _, protocol = await loop.create_datagram_endpoint(_Responder, local_addr=("0.0.0.0", p),
                                                              reuse_port=True)
            responders.append(protocol)
    except OSError as exc:
        log.warning("STUN responder not started on UDP %s/%s: %s", port, port + 1, exc)
        for r in responders:
            r.transport.close()
        return
    responders[0].other, responders[1].other = responders[1], responders[0]
    runtime.extras["stun"] = responders
    log.info("STUN responder on UDP %s (and %s for change-port)", port, port + 1)


async def stop(runtime: Runtime) -> None:
    for responder in runtime.extras.pop("stun", []):
        if responder.transport is not None:
            responder.transport.close()
