"""The NAT lab itself (tests/e2e/natlab.py) behaves like the routers the issue 12 tests rely on:
port-restricted sites keep one mapping for every destination and drop what nobody asked for,
symmetric sites map each destination anew, and no site reaches another's private addresses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.natlab import NatLab
from tests.e2e.netlab import RUN_DIR, stop_process

pytestmark = [pytest.mark.e2e]

PY = sys.executable


def send(ns, source_port: int, target: str, payload: str) -> None:
    host, _, port = target.rpartition(":")
    ns.exec(PY, "-c", "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.bind(('0.0.0.0', {source_port})); s.sendto({payload!r}.encode(), ('{host}', {port}))")


def test_sites_nat_like_real_routers(nat_prerequisites):
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = RUN_DIR / "natlab-stun.log"
    with NatLab({"a": "port_restricted", "b": "port_restricted", "s": "symmetric"}, bridges=["x", "y"]) as lab:
        x, y = lab.bridges["x"], lab.bridges["y"]
        responders = [ns.spawn([PY, "-m", "tests.e2e.stunserver", "3478"], log) for ns in (x, y)]
        try:
            targets = [f"{x.address}:3478", f"{y.address}:3478"]
            for name in ("a", "b", "s"):
                site = lab.sites[name]
                probe = subprocess.Popen(["ip", "netns", "exec", site.node.netns, PY, "-m", "tests.e2e.stunprobe",
                                          "51820", "3", *targets], stdout=subprocess.PIPE, text=True)
                mapped = json.loads(probe.stdout.readline())
                assert None not in mapped, f"site {name}: a responder did not answer ({mapped})"
                assert {m.rpartition(":")[0] for m in mapped} == {site.public}  # NATed to the router
                if site.nat == "port_restricted":
                    assert mapped[0] == mapped[1], "one mapping for every destination"
                else:
                    assert mapped[0] != mapped[1], "a new mapping per destination"
                # Unsolicited: from an address the Node never sent to, and from the right address
                # but another port: both dropped. From the responder it asked: let through.
                send(y, 4000, mapped[0], "from-y")
                send(x, 4000, mapped[0], "from-x-other-port")
                others = json.loads(probe.stdout.readline())
                probe.wait(10)
                assert others == [], f"site {name} let unsolicited packets in: {others}"
            a, b = lab.sites["a"], lab.sites["b"]
            assert a.node.ping(a.control_plane_host)  # the "internet" (control plane host)
            assert a.node.ping(x.address)  # a bridge
            assert not a.node.ping(b.lan_node, count=1, wait=1)  # another site's private address
            # The NAT events the acceptance tests provoke.
            before = a.public
            a.flush_conntrack()
            new = a.change_public_address()
            assert new != before
            probe = subprocess.run(["ip", "netns", "exec", a.node.netns, PY, "-m", "tests.e2e.stunprobe", "51820",
                                    "0", *targets], capture_output=True, text=True, timeout=30)
            mapped = json.loads(probe.stdout.splitlines()[0])
            assert {m.rpartition(":")[0] for m in mapped} == {new}
        finally:
            for proc in responders:
                stop_process(proc)
