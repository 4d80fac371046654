"""Endpoint discovery (docs/nat.md): STUN questions from the WireGuard port itself (agent/rawsock.py)
to the control plane's responder and to each relay, the answers read from the same port, and the
classification (agent/nat.py) of what came back. Blocking; the agent runs it in a thread."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from plexsphere import stun
from plexsphere.agent.nat import Observation, classify, consensus_endpoint
from plexsphere.agent.rawsock import RawReceiver, RawSender

Address = tuple[str, int]


@dataclass(frozen=True)
class Discovery:
    endpoint: str | None  # what to report: the mapping most observers saw
    nat_type: str
    observations: tuple[Observation, ...]


def local_address(toward: Address, port: int) -> Address | None:
    """The address this host sends from toward `toward` (routing decides), with `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(toward)
        except OSError:
            return None
        return probe.getsockname()[0], port


def discover(wg_port: int, observers: list[Address], change_port_observer: Address | None = None,
             timeout: float = 1.0, tries: int = 2) -> Discovery:
    """Asks every observer (in parallel, `tries` rounds) what it sees of the WireGuard port."""
    observers = list(dict.fromkeys(observers))
    asked = {o: stun.transaction_id() for o in observers}
    change_txid = stun.transaction_id()
    mapped: dict[Address, Address] = {}
    change_answered: bool | None = None if change_port_observer is None else False
    receiver = RawReceiver(wg_port)
    try:
        with RawSender() as sender:
            for _ in range(tries):
                for observer, txid in asked.items():
                    if observer not in mapped:
                        sender.send(wg_port, observer, stun.binding_request(txid))
                if change_port_observer is not None and not change_answered:
                    sender.send(wg_port, change_port_observer, stun.binding_request(change_txid, change_port=True))
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0 and (
                        len(mapped) < len(asked) or change_answered is False):
                    for source, payload in receiver.receive(min(left, 0.2)):
                        txid = stun.txid_of(payload)
                        for observer, asked_txid in asked.items():
                            if txid == asked_txid and source == observer:
                                got = stun.mapped_address(payload, txid)
                                if got:
                                    mapped[observer] = got
                        if (change_port_observer is not None and txid == change_txid
                                and source == (change_port_observer[0], change_port_observer[1] + 1)):
                            change_answered = True
                if len(mapped) == len(asked) and change_answered is not False:
                    break
    finally:
        receiver.close()
    observations = tuple(Observation(o[0], mapped.get(o)) for o in observers)
    local = local_address(observers[0], wg_port) if observers else None
    return Discovery(consensus_endpoint(observations), classify(local, observations, change_answered), observations)
