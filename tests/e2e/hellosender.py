"""Sends relay hellos from a WireGuard port it does not own (agent/rawsock.py), as plexd will:
`python -m tests.e2e.hellosender NODE_ID HELLO_KEY_HEX WG_PORT RELAY_HOST:PORT [INTERVAL_S]`."""

from __future__ import annotations

import sys
import time
import uuid

from plexsphere import stun
from plexsphere.agent import relay_messages as rm
from plexsphere.agent.rawsock import RawSender


def main() -> None:
    node_id, key, port = uuid.UUID(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
    host, _, relay_port = sys.argv[4].rpartition(":")
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
    with RawSender() as sender:
        while True:
            message = rm.hello(stun.transaction_id(), node_id, int(time.time() * 1000), key)
            sender.send(port, (host, int(relay_port)), message)
            time.sleep(interval)


if __name__ == "__main__":
    main()
