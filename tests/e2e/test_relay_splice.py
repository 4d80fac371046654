"""The relay's data path on real wireguard-go behind real NATs, before plexd drives it: a Node behind
a symmetric NAT and one behind a port-restricted NAT reach each other only through the bridge's
relay, which forwards their WireGuard messages without a key of their edge — a capture on the
bridge shows WireGuard framing and STUN only, never their plaintext."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from plexsphere.agent import relay_messages as rm
from tests.e2e import netlab
from tests.e2e.natlab import NatLab
from tests.e2e.netlab import RUN_DIR, stop_process, wait_for
from tests.e2e.wgtools import WgEnd, udp_packets

pytestmark = [pytest.mark.e2e]
PY = sys.executable
RELAY_PORT = 3478


def test_symmetric_and_port_restricted_nodes_meet_through_the_relay(nat_prerequisites):
    run_dir = RUN_DIR / "relay-splice"
    run_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    with NatLab({"a": "symmetric", "b": "port_restricted"}, bridges=["x"]) as lab:
        a_site, b_site, x = lab.sites["a"], lab.sites["b"], lab.bridges["x"]
        relay = f"{x.address}:{RELAY_PORT}"
        try:
            a, pa = WgEnd.start(a_site.node, f"{netlab.PREFIX}-a0", "10.99.0.1", run_dir)
            b, pb = WgEnd.start(b_site.node, f"{netlab.PREFIX}-b0", "10.99.0.2", run_dir)
            procs += [pa, pb]
            psk = run_dir / "edge.psk"
            psk.write_text(subprocess.run(["wg", "genpsk"], capture_output=True, text=True).stdout)
            ids = {"a": uuid.uuid4(), "b": uuid.uuid4()}
            hello_keys = {n: rm.hello_key(os.urandom(32)) for n in ids}
            status = run_dir / "relay-status.json"
            status.unlink(missing_ok=True)  # a leftover of an earlier run must not pass for this relay
            config = run_dir / "relay.json"
            config.write_text(json.dumps({
                "listen_port": RELAY_PORT, "source_address": x.address, "status_path": str(status),
                "nodes": {str(ids["a"]): [a.public, hello_keys["a"].hex()],
                          str(ids["b"]): [b.public, hello_keys["b"].hex()]},
            }))
            procs.append(x.spawn([PY, "-m", "tests.e2e.relayrunner", str(config)], run_dir / "relay.log"))
            wait_for(lambda: status.exists(), 15, "the relay to start")
            for name, site in (("a", a_site), ("b", b_site)):
                procs.append(site.node.spawn([PY, "-m", "tests.e2e.hellosender", str(ids[name]),
                                              hello_keys[name].hex(), "51820", relay, "1"],
                                             run_dir / f"hello-{name}.log"))
            wait_for(lambda: None not in json.loads(status.read_text())["nodes"].values(), 15,
                     "both Nodes to be bound at the relay")
            capture = run_dir / "bridge.pcap"
            tcpdump = subprocess.Popen(["ip", "netns", "exec", x.netns, "tcpdump", "-i", x.ns_veth, "-n", "-U", "-w",
                                        str(capture)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(tcpdump)
            time.sleep(1)  # tcpdump attaches
            a.add_peer(b, relay, 25, psk)
            b.add_peer(a, relay, 21, psk)
            started = time.monotonic()
            wait_for(lambda: a_site.node.ping(b.mesh_ip), 20, "a → b over the relay")
            assert b_site.node.ping(a.mesh_ip, count=3, wait=1)
            print(f"\nrelayed edge up in {time.monotonic() - started:.1f}s")
            assert a_site.node.exec("ping", "-c", "20", "-i", "0.05", "-q", b.mesh_ip).returncode == 0
            stop_process(tcpdump)
            state = json.loads(status.read_text())
            pair = "|".join(sorted(map(str, ids.values())))
            assert list(state["pairs"]) == [pair] and state["pairs"][pair] >= 1
            assert state["spliced_packets"] > 0, state  # the kernel carried the traffic
            packets = udp_packets(capture)
            relayed = [p for p in packets if RELAY_PORT in (p[1], p[3])]
            assert relayed
            for _src, _sport, _dst, _dport, payload in relayed:
                assert rm.parse_wireguard(payload) is not None or payload[4:8] == b"\x21\x12\xa4\x42"
            kinds = {rm.parse_wireguard(p[4]).kind for p in relayed if rm.parse_wireguard(p[4])}
            assert kinds <= {rm.INITIATION, rm.RESPONSE, rm.COOKIE_REPLY, rm.TRANSPORT} and rm.TRANSPORT in kinds
            assert not [p for p in packets if p[0] == "icmp"], "plaintext ICMP crossed the bridge"
            links = subprocess.run(["ip", "-n", x.netns, "-o", "link", "show"], capture_output=True, text=True).stdout
            assert {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()} == {"lo", x.ns_veth}, \
                "the bridge runs no WireGuard interface: it holds no key of the edge"
        finally:
            for proc in procs:
                stop_process(proc)
