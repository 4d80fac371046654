"""Runs agent/relay.py's RelayServer on its own (before plexd drives it): `python -m
tests.e2e.relayrunner CONFIG.json` with {"listen_port", "source_address", "status_path", "nodes":
{node_id: [public_key_b64, hello_key_hex]}}; writes its status to status_path every 0.5 s."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
import uuid
from pathlib import Path

from plexsphere.agent.relay import RelayServer


async def main(config: dict) -> None:
    relay = RelayServer(config["listen_port"], config["source_address"])
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: relay, local_addr=("0.0.0.0", config["listen_port"]))
    relay.assign({uuid.UUID(k): (base64.b64decode(v[0]), bytes.fromhex(v[1])) for k, v in config["nodes"].items()})
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    status = Path(config["status_path"])
    try:
        while not stop.is_set():
            await asyncio.to_thread(status.write_text, json.dumps(relay.status()))
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
    finally:
        relay.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
