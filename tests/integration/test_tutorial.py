"""Acceptance: docs/tutorial/enrol-your-first-node.md, Steps 1–7, run literally as one bash script
against a real `plexsphere up` (embedded PostgreSQL, seed, plexctl login), with every printed shape
checked against the tutorial's output blocks.

The only changes the harness makes to the shipped bash: `$PWD/bin` becomes this checkout's bin/
(the script runs in a scratch folder so the key files it writes stay out of the tree), the URL is
the stack's free port instead of :8080, and the Step 5 peer listing is wrapped in a bounded retry
("give it a few seconds"). After the tutorial it re-submits the rotation (same receipt) and
redeems the first token again (403 token_consumed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial" / "enrol-your-first-node.md"
VENV_BIN = Path(sys.executable).parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
MARK = "@@tutorial-block@@"
TOOLS = ("curl", "wg", "openssl", "jq", "python3")


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """[(language, body)] of the fenced blocks, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", markdown, re.S | re.M)]


def steps(markdown: str) -> list[tuple[str, str | None]]:
    """Each bash block with the text block printed right after it (None when it prints nothing)."""
    blocks = code_blocks(markdown)
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "bash":
            continue
        expected = blocks[i + 1][1] if i + 1 < len(blocks) and blocks[i + 1][0] == "text" else None
        out.append((body, expected))
    return out


def retry_bounded(body: str) -> str:
    """The tutorial's "give it a few seconds": re-run the block until both Nodes show, 30 s at most."""
    return (
        "for _attempt in $(seq 1 150); do\n"
        f"  _out=$({body.strip()}) || true\n"
        '  [ "$(printf "%s\\n" "$_out" | grep -c healthy)" -ge 2 ] && break\n'
        "  sleep 0.2\n"
        "done\n"
        'printf "%s\\n" "$_out"\n'
    )


EPILOGUE = r"""
# Harness checks beyond the page: the completion is idempotent, and a token burns on first use.
curl --silent --show-error --fail-with-body \
  --request POST \
  --header "Authorization: Bearer ${ENVELOPE}" \
  --header "Content-Type: application/json" \
  --data "{\"new_public_key\":\"${NEW_PUB}\"}" \
  "${PLEXSPHERE_URL}/v1/keys/rotate"
echo
curl --silent --show-error \
  --request POST --header "Content-Type: application/json" \
  --write-out '\n%{http_code}\n' \
  --data @- "${PLEXSPHERE_URL}/v1/register" <<EOF
{
  "project_id": "${PROJECT_ID}",
  "resource_id": "edge-router-03",
  "requested_resource_id": "edge-router-03",
  "bootstrap_token": "${TOKEN_A}",
  "nonce": "$(openssl rand -hex 16)",
  "public_key": "$(wg genkey | wg pubkey)"
}
EOF
"""


def build_script(markdown: str, url: str) -> tuple[str, list[str | None]]:
    parts = ["set -euo pipefail"]
    expected = []
    for body, text in steps(markdown):
        body = body.replace('export PATH="$PWD/bin:$PATH"', f'export PATH="{ROOT}/bin:$PATH"')
        body = body.replace("http://localhost:8080", url)
        if "plexctl peer list" in body:
            body = retry_bounded(body)
        # A newline first: curl's output (the receipt) ends without one.
        parts += [body.rstrip("\n"), f"printf '\\n%s\\n' {MARK}"]
        expected.append(text)
    parts += [EPILOGUE, f"printf '\\n%s\\n' {MARK}"]
    expected.append(None)
    return "\n".join(parts) + "\n", expected


@pytest.fixture(scope="module")
def plexsphere_up(tmp_path_factory):
    """A real `plexsphere up` (embedded PostgreSQL in its own data dir), stopped like Ctrl-C would."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        reason = f"the tutorial needs {', '.join(missing)} on PATH (apt-get install wireguard-tools jq curl openssl)"
        if os.environ.get("PLEXSPHERE_REQUIRE_E2E") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    tmp_path = tmp_path_factory.mktemp("tutorial")
    port = free_port()
    # Not under tmp_path: pytest resets /tmp/pytest-of-<user> to 0700 whenever any session starts,
    # which would lock the embedded PostgreSQL's system user out of its folder mid-run.
    data_dir = Path(tempfile.mkdtemp(prefix="plexsphere-tutorial-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXSPHERE_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "PLEXSPHERE_LOG_LEVEL": "info"})
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "plexsphere"), "up", "--data-dir", str(data_dir),
             "--listen", f"127.0.0.1:{port}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"plexsphere up exited ({proc.returncode}):\n{log_path.read_text()[-5000:]}")
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"plexsphere up did not become healthy:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.1)
        yield url, env, tmp_path, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tutorial_run(plexsphere_up):
    """Runs the shipped tutorial once; returns (outputs per bash block, expected text blocks, context)."""
    url, env, tmp_path, log_path = plexsphere_up
    script, expected = build_script(TUTORIAL.read_text(), url)
    workdir = tmp_path / "shell"
    workdir.mkdir()
    (workdir / "tutorial.sh").write_text(script)
    result = subprocess.run(["bash", "tutorial.sh"], cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=300)
    outputs = result.stdout.split(MARK + "\n")
    context = (f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
               f"server log:\n{log_path.read_text()[-4000:]}")
    assert result.returncode == 0, context
    assert len(outputs) == len(expected) + 1 and outputs[-1] == "", context
    return outputs, expected, context


def test_the_tutorial_runs_as_written(tutorial_run):
    Checks(*tutorial_run).run()


def test_the_mesh_tables_match_the_tutorial_line_for_line(tutorial_run):
    """Peer list and topology print exactly the tutorial's lines once ids (same length) are masked."""
    outputs, expected, _ = tutorial_run
    compared = 0
    for output, text in zip(outputs, expected, strict=False):
        if text and text.startswith(("NODE_ID                                MESH_IP", "FROM ")):
            masked = [re.sub(UUID, "<uuid>", line) for line in output.rstrip("\n").splitlines()]
            wanted = [re.sub(UUID, "<uuid>", line) for line in text.rstrip("\n").splitlines()]
            assert masked == wanted
            compared += 1
    assert compared == 2


class Checks:
    """Matches each block's output against the tutorial's, field by field where values vary."""

    def __init__(self, outputs: list[str], expected: list[str | None], context: str) -> None:
        self.outputs = [o.rstrip("\n") for o in outputs[:-1]]
        self.expected = expected
        self.context = context

    def run(self) -> None:
        it = iter(zip(self.outputs, self.expected, strict=True))
        self.domain_id(*next(it))
        self.project_id(*next(it))
        self.token_issue(*next(it))
        self.silent(*next(it))  # TOKEN_A=
        node_a = self.register_a(*next(it))
        self.silent(*next(it))  # NODE_A=
        self.register_b(*next(it))
        peers = self.peer_list(*next(it))
        self.topology(*next(it), peers)
        peer_id = self.dry_run(*next(it), node_a)
        rotation_id = self.rotate(*next(it), node_a, peer_id)
        self.silent(*next(it))  # ENVELOPE=
        receipt = self.receipt(*next(it), rotation_id)
        self.epilogue(next(it)[0], receipt)

    def fail(self, what: str, output: str) -> None:
        pytest.fail(f"{what}: got\n{output}\n---\n{self.context}")

    def silent(self, output: str, expected: str | None) -> None:
        assert expected is None
        if output:
            self.fail("a capture step printed output", output)

    def domain_id(self, output: str, expected: str) -> None:
        assert re.fullmatch(UUID, expected.strip())
        if not re.fullmatch(UUID, output):
            self.fail("DOMAIN_ID is not a uuid", output)

    def project_id(self, output: str, expected: str) -> None:
        if not re.fullmatch(UUID, output):
            self.fail("PROJECT_ID is not a uuid", output)

    def token_issue(self, output: str, expected: str) -> None:
        lines = output.splitlines()
        want = expected.strip().splitlines()
        ok = (
            len(lines) == 5 and lines[0] == want[0]
            and re.fullmatch(r"psb_dev_[a-z2-7]+_node_[a-z2-7]+", lines[1])
            and re.fullmatch(f"token_id: {UUID}", lines[2])
            and re.fullmatch(f"issued_at: {TIMESTAMP}", lines[3])
            and re.fullmatch(f"expires_at: {TIMESTAMP}", lines[4])
        )
        if not ok:
            self.fail("bootstrap-token issue output differs from the tutorial's shape", output)

    def register_a(self, output: str, expected: str) -> str:
        got, want = json.loads(output), json.loads(expected)
        if list(got) != list(want) or not re.fullmatch(UUID, got["node_id"]) or \
                {k: got[k] for k in ("mesh_ip", "signing_key_id", "domain_mesh_cidr")} != \
                {k: want[k] for k in ("mesh_ip", "signing_key_id", "domain_mesh_cidr")}:
            self.fail("register response differs from the tutorial", output)
        if output != json.dumps(got, indent=2):  # jq's layout, keys in the tutorial's order
            self.fail("jq output layout differs", output)
        return got["node_id"]

    def register_b(self, output: str, expected: str) -> None:
        if output != expected.strip():
            self.fail("second node's mesh_ip", output)

    def _table(self, output: str, expected: str, what: str) -> list[list[str]]:
        """Rows split into cells; the header must name the tutorial's columns in its order (the
        byte-exact header lines are checked separately)."""
        lines, want = output.splitlines(), expected.strip("\n").splitlines()
        if not lines or lines[0].split() != want[0].split() or len(lines) != len(want):
            self.fail(f"{what}: header or row count differs from the tutorial's\n{expected}", output)
        return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]

    def peer_list(self, output: str, expected: str) -> dict[str, str]:
        rows = self._table(output, expected, "plexctl peer list")
        got = sorted((r[1], r[2]) for r in rows)
        if got != [("10.50.0.1", "healthy"), ("10.50.0.2", "healthy")] or \
                not all(re.fullmatch(UUID, r[0]) for r in rows):
            self.fail("peer list rows", output)
        return {r[1]: r[0] for r in rows}

    def topology(self, output: str, expected: str, peers: dict[str, str]) -> None:
        lines = output.splitlines()
        self._table(output, expected, "plexctl mesh topology")
        header = lines[0]
        fallback_at = header.index("FALLBACK")
        want = {(peers["10.50.0.1"], peers["10.50.0.2"], "10.50.0.2"),
                (peers["10.50.0.2"], peers["10.50.0.1"], "10.50.0.1")}
        got = set()
        for line in lines[1:]:
            cells = line.split()
            # Direct edges: the FALLBACK column is blank, both ends healthy.
            if line[fallback_at:fallback_at + len("FALLBACK")].strip() or cells[3:] != ["healthy", "healthy"]:
                self.fail("topology row", output)
            got.add(tuple(cells[:3]))
        if got != want:
            self.fail("topology edges", output)

    def dry_run(self, output: str, expected: str, node_a: str) -> str:
        rows = self._table(output, expected, "key rotate --dry-run")
        node, peer_id, affected, pending, eta = rows[0]
        if (node, affected, pending, eta) != (node_a, "1", "false", "0") or not re.fullmatch(UUID, peer_id):
            self.fail("dry-run row", output)
        return peer_id

    def rotate(self, output: str, expected: str, node_a: str, peer_id: str) -> str:
        rows = self._table(output, expected, "key rotate")
        node, peer, rotation_id, pending = rows[0]
        if (node, peer, pending) != (node_a, peer_id, "false") or not re.fullmatch(UUID, rotation_id):
            self.fail("rotate row", output)
        return rotation_id

    def receipt(self, output: str, expected: str, rotation_id: str) -> str:
        shape = re.escape(expected.strip()).replace(re.escape("<rotation-uuid>"), UUID)
        if not re.fullmatch(shape, output) or json.loads(output)["rotation_id"] != rotation_id:
            self.fail("rotation receipt", output)
        return output

    def epilogue(self, output: str, receipt: str) -> None:
        replay, problem, status = output.splitlines()
        if replay != receipt:
            self.fail("re-submitting the same key must return the same receipt", output)
        if status != "403" or json.loads(problem)["code"] != "token_consumed":
            self.fail("a second redemption must be 403 token_consumed", output)
