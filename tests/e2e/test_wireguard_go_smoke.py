"""The userspace backend on real wireguard-go, without a control plane: two namespaces, each
configured through reconcile() + UserspaceBackend, ping each other over the tunnel, survive a key
swap, and read back exactly what was written (reconcile then finds nothing to do)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plexsphere.crypto import x25519_keypair, x25519_public_from_private
from tests.e2e.netlab import RUN_DIR, Namespace, NetLab, wait_for

pytestmark = [pytest.mark.e2e]

# Runs inside a namespace: desired state in (JSON on stdin), apply, then report what reconcile
# still wants (must be nothing once the device reads back what was written).
APPLY_SCRIPT = """
import json, sys
from pathlib import Path
from plexsphere.agent.model import DesiredState, InterfaceConfig, PeerConfig
from plexsphere.agent.reconcile import reconcile
from plexsphere.agent.wireguard.userspace import UserspaceBackend
spec = json.load(sys.stdin)
backend = UserspaceBackend(spec["ifname"], run_dir=Path(spec["run_dir"]))
if spec.get("down"):
    backend.down()
    print(json.dumps({"exists": backend.read().exists}))
    sys.exit(0)
peers = {bytes.fromhex(p["public_key"]): PeerConfig(public_key=bytes.fromhex(p["public_key"]),
         allowed_ips=tuple(p["allowed_ips"]), endpoint=p["endpoint"], preshared_key=bytes.fromhex(p["psk"]))
         for p in spec["peers"]}
desired = DesiredState(InterfaceConfig(bytes.fromhex(spec["private_key"]), spec["port"], (spec["address"],)), peers)
backend.apply(reconcile(desired, backend.read()))
print(json.dumps({"remaining": [repr(op) for op in reconcile(desired, backend.read())]}))
"""


def apply(ns: Namespace, spec: dict) -> dict:
    proc = subprocess.run(["ip", "netns", "exec", ns.netns, sys.executable, "-c", APPLY_SCRIPT],
                          input=json.dumps(spec), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def spec(ns: Namespace, ifname: str, private: bytes, mesh_ip: str, peer_ns: Namespace, peer_private: bytes,
         peer_mesh_ip: str, psk: bytes, run_dir: Path) -> dict:
    return {
        "ifname": ifname, "run_dir": str(run_dir), "private_key": private.hex(), "port": 51820,
        "address": f"{mesh_ip}/24",
        "peers": [{"public_key": x25519_public_from_private(peer_private).hex(), "allowed_ips": [f"{peer_mesh_ip}/32"],
                   "endpoint": f"{peer_ns.address}:51820", "psk": psk.hex()}],
    }


def test_two_namespaces_ping_over_wireguard_go(e2e_prerequisites, tmp_path: Path) -> None:
    run_dir = RUN_DIR / "smoke"
    run_dir.mkdir(parents=True, exist_ok=True)
    psk = bytes([42]) * 32
    key0, key1 = x25519_keypair()[0], x25519_keypair()[0]
    with NetLab(["s0", "s1"]) as lab:
        s0, s1 = lab["s0"], lab["s1"]
        assert s0.ping(s1.address), "the routed underlay must work before WireGuard is tried"
        try:
            assert apply(s0, spec(s0, "pxe2e-s0w", key0, "10.99.0.1", s1, key1, "10.99.0.2", psk, run_dir)) == \
                {"remaining": []}
            assert apply(s1, spec(s1, "pxe2e-s1w", key1, "10.99.0.2", s0, key0, "10.99.0.1", psk, run_dir)) == \
                {"remaining": []}
            wait_for(lambda: s0.ping("10.99.0.2"), 15, "s0 → s1 over the tunnel")
            assert s1.ping("10.99.0.1")

            # Key swap on s0 (what a rotation does): s1 learns the new public key, traffic resumes.
            new_key0 = x25519_keypair()[0]
            apply(s0, spec(s0, "pxe2e-s0w", new_key0, "10.99.0.1", s1, key1, "10.99.0.2", psk, run_dir))
            apply(s1, spec(s1, "pxe2e-s1w", key1, "10.99.0.2", s0, new_key0, "10.99.0.1", psk, run_dir))
            wait_for(lambda: s1.ping("10.99.0.1"), 15, "s1 → s0 after s0's key swap")

            # A fresh session with mismatched PSKs cannot handshake: proof the PSK is in use.
            third_key0 = x25519_keypair()[0]
            apply(s0, spec(s0, "pxe2e-s0w", third_key0, "10.99.0.1", s1, key1, "10.99.0.2", psk, run_dir))
            wrong = bytes([1]) * 32
            apply(s1, spec(s1, "pxe2e-s1w", key1, "10.99.0.2", s0, third_key0, "10.99.0.1", wrong, run_dir))
            assert not s1.ping("10.99.0.1", count=3, wait=1)
            apply(s1, spec(s1, "pxe2e-s1w", key1, "10.99.0.2", s0, third_key0, "10.99.0.1", psk, run_dir))
            wait_for(lambda: s1.ping("10.99.0.1"), 15, "s1 → s0 once the PSKs agree")
        finally:
            for ns, ifname in ((s0, "pxe2e-s0w"), (s1, "pxe2e-s1w")):
                subprocess.run(["ip", "netns", "exec", ns.netns, sys.executable, "-c", APPLY_SCRIPT],
                               input=json.dumps({"ifname": ifname, "run_dir": str(run_dir), "down": True}),
                               capture_output=True, text=True, timeout=30)

