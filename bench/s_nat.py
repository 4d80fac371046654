"""Scenario nat — the relay's data path (issue 12): two Nodes (wireguard-go) behind two
port-restricted NATs in the NAT lab (tests/e2e/natlab.py), once direct (hole punched) and once
through a bridge's relay (agent/relay.py: kernel splice), same Nodes, same run:

- throughput A→B over the mesh IPs (iperf3, TCP, 8 s) and the relayed/direct ratio;
- latency (200 pings each): p50 and p99, and what the relay adds;
- CPU: the relay process's own CPU, and the whole machine's busy CPU, per Gbit moved.

Needs root, wireguard-go, nftables, iperf3. The lab's names use the `pxbench` prefix (not the e2e
layer's), so a bench run never touches an e2e session's namespaces."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.harness import Table, emit

PY = sys.executable
RELAY_PORT = 3478
SECONDS = 8


def _busy_jiffies() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def _proc_cpu(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _iperf(client_ns, server_ns, address: str) -> float:
    server = subprocess.Popen(["ip", "netns", "exec", server_ns.netns, "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = client_ns.exec("iperf3", "-c", address, "-p", "5201", "-t", str(SECONDS), "-J", timeout=SECONDS + 30)
        return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.wait(10)


def _pings(ns, address: str, count: int = 200) -> list[float]:
    out = ns.exec("ping", "-n", "-c", str(count), "-i", "0.01", address, timeout=60).stdout
    return [float(m) for m in re.findall(r"time=([0-9.]+) ms", out)]


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def measure() -> dict:
    import tests.e2e.natlab as natlab
    import tests.e2e.netlab as netlab

    netlab.PREFIX = natlab.PREFIX = "pxbench"
    netlab.FORWARD_SAVE = natlab.FORWARD_SAVE = netlab.RUN_DIR / "bench-ip_forward.saved"
    from tests.e2e.wgtools import WgEnd

    from plexsphere.agent import relay_messages as rm

    run_dir = netlab.RUN_DIR / "bench-nat"
    run_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    results: dict = {}
    with natlab.NatLab({"a": "port_restricted", "b": "port_restricted"}, bridges=["x"]) as lab:
        a_site, b_site, x = lab.sites["a"], lab.sites["b"], lab.bridges["x"]
        try:
            a, pa = WgEnd.start(a_site.node, "pxbench-a0", "10.98.0.1", run_dir)
            b, pb = WgEnd.start(b_site.node, "pxbench-b0", "10.98.0.2", run_dir)
            procs += [pa, pb]
            psk = run_dir / "edge.psk"
            psk.write_text(subprocess.run(["wg", "genpsk"], capture_output=True, text=True).stdout)
            # Direct: each dials the other's NAT mapping (masquerade keeps port 51820); keepalives punch.
            a.add_peer(b, f"{b_site.public}:51820", 25, psk)
            b.add_peer(a, f"{a_site.public}:51820", 21, psk)
            netlab.wait_for(lambda: a_site.node.ping(b.mesh_ip), 30, "the direct (punched) edge")
            results["direct"] = _run(a_site.node, b_site.node, b.mesh_ip, None)

            ids = {"a": uuid.uuid4(), "b": uuid.uuid4()}
            keys = {n: rm.hello_key(os.urandom(32)) for n in ids}
            status = run_dir / "relay-status.json"
            status.unlink(missing_ok=True)
            config = run_dir / "relay.json"
            config.write_text(json.dumps({
                "listen_port": RELAY_PORT, "source_address": x.address, "status_path": str(status),
                "nodes": {str(ids["a"]): [a.public, keys["a"].hex()], str(ids["b"]): [b.public, keys["b"].hex()]}}))
            relay = x.spawn([PY, "-m", "tests.e2e.relayrunner", str(config)], run_dir / "relay.log")
            procs.append(relay)
            netlab.wait_for(status.exists, 15, "the relay")
            for name, site in (("a", a_site), ("b", b_site)):
                procs.append(site.node.spawn([PY, "-m", "tests.e2e.hellosender", str(ids[name]), keys[name].hex(),
                                              "51820", f"{x.address}:{RELAY_PORT}", "1"], run_dir / f"h-{name}.log"))
            netlab.wait_for(lambda: None not in json.loads(status.read_text())["nodes"].values(), 15, "bindings")
            a.add_peer(b, f"{x.address}:{RELAY_PORT}", 25, psk)
            b.add_peer(a, f"{x.address}:{RELAY_PORT}", 21, psk)
            netlab.wait_for(lambda: a_site.node.ping(b.mesh_ip) and json.loads(status.read_text())["handshakes"],
                            30, "the relayed edge")
            results["relayed"] = _run(a_site.node, b_site.node, b.mesh_ip, relay.pid)
            results["relayed"]["spliced_packets"] = json.loads(status.read_text())["spliced_packets"]
        finally:
            for proc in procs:
                netlab.stop_process(proc)
    return results


def _run(client, server, address: str, relay_pid: int | None) -> dict:
    pings = _pings(client, address)
    jiffies, relay_cpu = _busy_jiffies(), _proc_cpu(relay_pid) if relay_pid else 0.0
    mbit = _iperf(client, server, address)
    busy = (_busy_jiffies() - jiffies) / os.sysconf("SC_CLK_TCK")
    relay_used = (_proc_cpu(relay_pid) - relay_cpu) if relay_pid else 0.0
    gbit = mbit * SECONDS / 1000
    return {"mbit": mbit, "p50": _p(pings, 50), "p99": _p(pings, 99), "machine_cpu_s_per_gbit": busy / gbit,
            "relay_cpu_s_per_gbit": relay_used / gbit}


async def run(pg) -> None:  # noqa: ARG001 - the harness hands every scenario its database
    r = measure()
    d, rel = r["direct"], r["relayed"]
    table = Table("nat: direct vs relayed between the same two Nodes behind port-restricted NATs", ["path", "Mbit/s", "ratio", "ping p50 ms", "ping p99 ms", "machine CPU s/Gbit",
                   "relay process CPU s/Gbit"])
    table.add("direct (punched)", f"{d['mbit']:.0f}", "1.00", f"{d['p50']:.3f}", f"{d['p99']:.3f}",
              f"{d['machine_cpu_s_per_gbit']:.2f}", "-")
    table.add("relayed (kernel splice)", f"{rel['mbit']:.0f}", f"{rel['mbit'] / d['mbit']:.2f}", f"{rel['p50']:.3f}",
              f"{rel['p99']:.3f}", f"{rel['machine_cpu_s_per_gbit']:.2f}", f"{rel['relay_cpu_s_per_gbit']:.3f}")
    table.notes.append(f"relay adds {rel['p50'] - d['p50']:+.3f} ms at p50, {rel['p99'] - d['p99']:+.3f} ms at "
                       f"p99; {rel['spliced_packets']} packets spliced by the kernel")
    emit(table)
