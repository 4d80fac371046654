"""The NAT lab's probe: `python -m tests.e2e.stunprobe LOCAL_PORT LISTEN_S HOST:PORT...` asks each
STUN responder from LOCAL_PORT, prints one JSON line of the mapped addresses (null: no answer),
then listens LISTEN_S seconds and prints a JSON line of whatever else arrived (sender, payload)."""

from __future__ import annotations

import json
import socket
import sys
import time

from plexsphere import stun


def main() -> None:
    local_port, listen_s, targets = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", local_port))
    mapped = []
    for target in targets:
        host, _, port = target.rpartition(":")
        txid = stun.transaction_id()
        found = None
        for _ in range(3):
            sock.sendto(stun.binding_request(txid), (host, int(port)))
            sock.settimeout(1.0)
            try:
                while found is None:
                    data, _ = sock.recvfrom(2048)
                    got = stun.mapped_address(data, txid)
                    found = f"{got[0]}:{got[1]}" if got else None
            except TimeoutError:
                continue
            break
        mapped.append(found)
    print(json.dumps(mapped), flush=True)
    others = []
    deadline = time.monotonic() + listen_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, addr = sock.recvfrom(2048)
        except TimeoutError:
            break
        others.append([f"{addr[0]}:{addr[1]}", data.decode(errors="replace")])
    print(json.dumps(others), flush=True)


if __name__ == "__main__":
    main()
