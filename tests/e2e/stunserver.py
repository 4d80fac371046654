"""A bare STUN responder for the NAT lab's own checks: `python -m tests.e2e.stunserver PORT`
answers binding requests with the asker's address as this namespace sees it."""

from __future__ import annotations

import socket
import sys

from plexsphere import stun


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        data, addr = sock.recvfrom(2048)
        txid = stun.txid_of(data)
        if stun.message_type(data) == stun.BINDING_REQUEST and txid is not None:
            sock.sendto(stun.binding_success(txid, addr[0], addr[1]), addr)


if __name__ == "__main__":
    main()
