"""Issue 7 end-to-end acceptance on real WireGuard (wireguard-go) across network namespaces.

Three namespaces (a, b, c) hang off the host by veth in the routed layout; the control plane runs on
the host (listening on 0.0.0.0, reached at each namespace's host-side veth address); one `plexd up`
runs in each namespace with its own interface (pxe2e-a0 …). The test then drives the fleet only
through plexctl and watches the real WireGuard devices (`wg show`, readable from the host because
wireguard-go's UAPI sockets live on the shared filesystem) and real pings over mesh IPs."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_stack, stop_stack, wait_until
from tests.e2e.netlab import RUN_DIR, Namespace, NetLab, run, stop_process, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLEXD = str(Path(sys.executable).parent / "plexd")
NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def host_stack(postgres, tmp_path_factory, e2e_prerequisites):
    """The control plane listening on every host address, so namespaces reach it over their veth."""
    stack = make_stack(postgres, tmp_path_factory.mktemp("e2e-stack"), listen_host="0.0.0.0")
    try:
        wait_until(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.outbox") == 0, message="outbox drained")
        yield stack
    finally:
        stop_stack(postgres, stack)


@dataclass
class Plexd:
    ns: Namespace
    state_dir: Path
    log: Path
    url: str
    proc: subprocess.Popen | None = None

    @property
    def interface(self) -> str:
        return f"pxe2e-{self.ns.name}0"

    def start(self, token: str | None = None) -> None:
        args = [PLEXD, "up", "--config", str(self.state_dir.parent / "empty.yaml"), "--control-plane-url", self.url,
                "--state-dir", str(self.state_dir), "--interface", self.interface, "--backend", "userspace",
                "--resource-id", f"e2e-{self.ns.name}-{self.state_dir.parent.name}", "--heartbeat-interval", "2",
                "--log-level", "debug"]
        if token is not None:
            token_file = self.state_dir.parent / f"{self.ns.name}.token"
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
            args += ["--bootstrap-token-file", str(token_file)]
        self.proc = self.ns.spawn(args, self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def identity(self) -> dict | None:
        try:
            return json.loads((self.state_dir / "identity.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wg_public_key(self) -> str | None:
        proc = run("wg", "show", self.interface, "public-key", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def wg_peers(self) -> dict[str, dict]:
        """public key → {endpoint, allowed_ips, psk} from the live device."""
        proc = run("wg", "show", self.interface, "dump", check=False)
        if proc.returncode != 0:
            return {}
        peers = {}
        for line in proc.stdout.splitlines()[1:]:
            public, psk, endpoint, allowed, *_ = line.split("\t")
            peers[public] = {"endpoint": endpoint, "allowed_ips": allowed, "psk": psk != "(none)"}
        return peers

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def issue_token(stack, project_id: str) -> str:
    result = stack.plexctl("bootstrap-token", "issue", "--project", project_id, "--kind", "node",
                           "--env-prefix", "dev", "--ttl", "1h", "--output", "json")
    return json.loads(result.stdout)["token"]


def rows(stdout: str) -> list[dict]:
    data = json.loads(stdout)
    return data["items"] if isinstance(data, dict) and "items" in data else data


def all_pairs_ping(nodes: dict[str, Plexd], mesh_ips: dict[str, str], names) -> bool:
    return all(nodes[a].ns.ping(mesh_ips[b]) for a, b in itertools.permutations(names, 2))


def test_three_agents_mesh_rotate_delete_restart(host_stack, e2e_prerequisites) -> None:
    stack = host_stack
    project = stack.create_project()
    run_root = RUN_DIR / f"mesh-{int(time.time())}"
    run_root.mkdir(parents=True)
    (run_root / "empty.yaml").write_text("")
    port = stack.server.port
    passed = False

    with NetLab(list(NAMES)) as lab:
        nodes = {n: Plexd(lab[n], run_root / n, run_root / f"plexd-{n}.log", f"http://{lab[n].host_address}:{port}")
                 for n in NAMES}
        try:
            for node in nodes.values():
                node.start(issue_token(stack, project["id"]))

            # -- enrol and mesh ----------------------------------------------------------------
            identities = wait_for(lambda: all(n.identity() for n in nodes.values())
                                  and {k: n.identity() for k, n in nodes.items()}, 60, "all three to enrol")
            mesh_ips = {k: v["mesh_ip"] for k, v in identities.items()}
            node_ids = {k: v["node_id"] for k, v in identities.items()}
            assert len(set(mesh_ips.values())) == 3

            def meshed(names) -> bool:
                for a in names:
                    peers = nodes[a].wg_peers()
                    want = {nodes[b].wg_public_key() for b in names if b != a}
                    if set(peers) != want or not all(p["psk"] and p["endpoint"] != "(none)" for p in peers.values()):
                        return False
                return True

            wait_for(lambda: meshed(NAMES), 60, "every interface to hold the two other peers with PSKs")
            wait_for(lambda: all_pairs_ping(nodes, mesh_ips, NAMES), 30, "all pairs to ping over the mesh")

            peer_rows = rows(stack.plexctl("peer", "list", "--domain", str(stack.domain_id), "-o", "json").stdout)
            # Rows are NodeSummary objects (`id`), the table's NODE_ID column.
            ours = {r["id"]: r for r in peer_rows if r["id"] in node_ids.values()}
            assert set(ours) == set(node_ids.values())
            assert {r["reachability"] for r in ours.values()} == {"healthy"}
            assert {r["mesh_ip"] for r in ours.values()} == set(mesh_ips.values())

            # -- rotation completes by itself, traffic keeps flowing -----------------------------
            old_key_a = nodes["a"].wg_public_key()
            started = time.monotonic()
            stack.plexctl("key", "rotate", "--node", node_ids["a"])
            new_key_a = wait_for(lambda: (k := nodes["a"].wg_public_key()) != old_key_a and k, 20,
                                 "a's interface to switch to its new key")
            wait_for(lambda: all(new_key_a in nodes[p].wg_peers() for p in ("b", "c")), 20,
                     "b and c to learn a's new key")
            wait_for(lambda: all(nodes["a"].ns.ping(mesh_ips[p]) and nodes[p].ns.ping(mesh_ips["a"])
                                 for p in ("b", "c")), 20, "pings with a's new key")
            rotated_in = time.monotonic() - started
            assert rotated_in < 30
            assert all(old_key_a not in nodes[p].wg_peers() for p in ("b", "c"))
            assert stack.sql_value("SELECT status FROM plexsphere.key_rotations WHERE node_id = %s "
                                   "ORDER BY requested_at DESC LIMIT 1", node_ids["a"]) == "completed"

            # -- deletion removes c from a's and b's devices -------------------------------------
            key_c = nodes["c"].wg_public_key()
            stack.plexctl("node", "delete", node_ids["c"])
            wait_for(lambda: all(key_c not in nodes[p].wg_peers() for p in ("a", "b")), 20,
                     "c to disappear from a's and b's WireGuard peers")
            assert not nodes["a"].ns.ping(mesh_ips["c"], count=1, wait=1)
            nodes["c"].stop()

            # -- restart keeps identity and address ---------------------------------------------
            nodes["b"].stop()
            assert nodes["b"].wg_public_key(), "SIGTERM without --down-on-exit leaves the interface up"
            nodes["b"].start()  # no token: the saved identity must be enough
            wait_for(lambda: nodes["b"].alive() and "event stream open" in nodes["b"].log_tail(400), 30,
                     "b to reconnect after its restart")
            assert nodes["b"].identity()["node_id"] == node_ids["b"]
            assert nodes["b"].identity()["mesh_ip"] == mesh_ips["b"]
            wait_for(lambda: all_pairs_ping(nodes, mesh_ips, ("a", "b")), 20, "a ↔ b after b's restart")
            assert stack.sql_value("SELECT count(*) FROM plexsphere.nodes WHERE project_id = %s",
                                   project["id"]) == 2  # a and b; no re-registration on restart
            print(f"\nrotation completed and traffic resumed in {rotated_in:.1f}s")
            passed = True
        except BaseException:
            for name, node in nodes.items():
                print(f"\n----- plexd {name} (alive={node.alive()}) -----\n{node.log_tail()}")
            print(f"\n----- server -----\n{stack.server.log()[-5000:]}")
            raise
        finally:
            for node in nodes.values():
                node.stop()
    if passed:  # keep state and logs of a failed run for inspection; cleanup.sh removes them later
        shutil.rmtree(run_root, ignore_errors=True)

