"""`make up` acceptance: the real `plexsphere up` as a subprocess — embedded PostgreSQL in the data
dir, plexctl logged in with no other step, data kept across restarts, nothing left running after
Ctrl-C or SIGTERM — and the same against an external PostgreSQL (PLEXSPHERE_DATABASE_URL)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.conftest import VENV_BIN, free_port, wait_until

pytestmark = pytest.mark.slow

EXTERNAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _process_start(pid: int) -> str | None:
    """Start time of a live process (None when gone or a zombie), to tell it from a reused pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, start time, command line) for every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), fields[19], cmdline)
    return table


def postgres_processes(data_dir: Path) -> set[tuple[int, str]]:
    """(pid, start time) of the postmaster serving `data_dir` and all its children (whose command
    lines no longer name the data dir)."""
    table = _processes()
    roots = {pid for pid, (_, _, cmd) in table.items() if str(data_dir) in cmd and "postgres" in cmd
             and "-D" in cmd}
    found = set(roots)
    frontier = set(roots)
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return {(pid, table[pid][1]) for pid in found}


def still_alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {(pid, start) for pid, start in processes if _process_start(pid) == start}


def _describe(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"{pid}: gone"
    state = next((line for line in status if line.startswith("State:")), "")
    return f"{pid}: {state} {cmdline}"


def assert_all_exit(processes: set[tuple[int, str]], what: str, up: Up) -> None:
    # pg_ctl returns once the pid file is gone; the postmaster exits a moment later.
    deadline = time.monotonic() + 10
    while still_alive(processes):
        if time.monotonic() > deadline:
            left = "\n".join(_describe(pid) for pid, _ in sorted(processes))
            pytest.fail(f"{what} left PostgreSQL running:\n{left}\n--- up log:\n{up.log()}")
        time.sleep(0.05)


class Up:
    """One `plexsphere up` run in its own session, so a signal to its process group is what a
    terminal's Ctrl-C delivers."""

    def __init__(self, root: Path, port: int, *, database_url: str | None = None) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.url = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXSPHERE_")}
        self.env.update({"XDG_CONFIG_HOME": str(root / "config"), "PATH": f"{VENV_BIN}:{self.env.get('PATH', '')}"})
        if database_url:
            self.env["PLEXSPHERE_DATABASE_URL"] = database_url
        self.log_path = root / f"up-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "plexsphere"), "up", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{port}"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"plexsphere up exited ({self.proc.returncode}):\n{self.log()}")
            try:
                return httpx.get(self.url + "/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=timeout, interval=0.1, message="plexsphere up to serve /v1/health")

    def plexctl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([str(VENV_BIN / "plexctl"), *args], env=self.env, capture_output=True, text=True,
                                timeout=60, input=input)
        if check:
            assert result.returncode == 0, f"plexctl {args}: {result.stderr}"
        return result

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                pytest.fail(f"plexsphere up ignored {sig.name}:\n{self.log()}")
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """Test clean-up: whatever state it is in, leave nothing running."""
        if self.proc.poll() is None:
            self.stop(signal.SIGTERM)
        for pid, _ in still_alive(postgres_processes(self.data_dir)):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def runs(tmp_path):
    started: list[Up] = []

    def start(port: int | None = None, **kw) -> Up:
        up = Up(tmp_path, port or free_port(), **kw)
        started.append(up)
        return up

    yield start
    for up in started:
        up.kill()


def test_up_serves_logs_plexctl_in_keeps_data_and_stops_postgres(runs, tmp_path):
    first = runs()
    first.wait_healthy()
    log = first.log()
    assert "plexsphere is up at" in log

    me = json.loads(first.plexctl("whoami", "-o", "json").stdout)  # no other step
    assert me["principal_type"] == "user"
    domain_id = me["domain_id"]
    creds = json.loads((tmp_path / "config" / "plexsphere" / "credentials.json").read_text())
    assert creds["url"] == first.url
    assert oct((tmp_path / "config" / "plexsphere" / "credentials.json").stat().st_mode & 0o777) == "0o600"

    # The one-time admin password from the first start signs in; that login replaces the API token.
    password = re.search(r"password '([^']+)'", log).group(1)
    first.plexctl("login", "--username", "admin", "--password-stdin", input=password + "\n")
    creds = json.loads((tmp_path / "config" / "plexsphere" / "credentials.json").read_text())
    assert creds["token"].startswith("pxa_")

    postgres = postgres_processes(first.data_dir)
    assert postgres, "the embedded PostgreSQL should run from the data dir"
    assert first.stop(signal.SIGINT) in (0, 130)
    assert_all_exit(postgres, "Ctrl-C", first)
    assert not (first.data_dir / "postgres" / "postmaster.pid").exists()

    second = runs(port=int(first.url.rsplit(":", 1)[1]))
    second.wait_healthy()
    assert "local admin created" not in second.log()  # no second seed
    me_again = json.loads(second.plexctl("whoami", "-o", "json").stdout)
    assert me_again["domain_id"] == domain_id
    # A restart keeps the operator's own login rather than minting over it.
    assert second.plexctl("auth", "token").stdout.strip() == creds["token"]
    assert me_again["amr"] == ["pwd"]
    rows = subprocess.run(
        [str(VENV_BIN / "plexsphere"), "db", "psql", "--data-dir", str(second.data_dir), "-tAc",
         "SELECT (SELECT count(*) FROM plexsphere.domains WHERE slug = 'acme-corp'), "
         "(SELECT count(*) FROM plexsphere.identities WHERE username = 'admin')"],
        env=second.env, capture_output=True, text=True, timeout=60,
    )
    assert rows.returncode == 0, rows.stderr
    assert rows.stdout.strip() == "1|1"

    postgres = postgres_processes(second.data_dir)
    assert second.stop(signal.SIGTERM) == 128 + signal.SIGTERM
    assert_all_exit(postgres, "SIGTERM", second)


def test_sigterm_during_start_up_still_stops_postgres(runs):
    up = runs()
    # As soon as PostgreSQL runs, before migrations and serving are done.
    wait_until(lambda: postgres_processes(up.data_dir) or up.proc.poll() is not None, timeout=120,
               interval=0.01, message="embedded PostgreSQL to start")
    postgres = postgres_processes(up.data_dir)
    up.stop(signal.SIGTERM)
    assert_all_exit(postgres, "SIGTERM during start-up", up)


def _external_postgres_or_skip() -> None:
    try:
        with psycopg.connect(EXTERNAL_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 for the external-database acceptance test: {exc}")


def test_up_against_an_external_postgresql(runs):
    _external_postgres_or_skip()
    name = f"px_up_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(EXTERNAL_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        up = runs(database_url=database_url)
        up.wait_healthy()
        me = json.loads(up.plexctl("whoami", "-o", "json").stdout)
        with psycopg.connect(database_url) as conn:
            seeded = conn.execute("SELECT id FROM plexsphere.domains WHERE slug = 'acme-corp'").fetchone()
        assert str(seeded[0]) == me["domain_id"]
        assert not (up.data_dir / "postgres").exists(), "no embedded PostgreSQL when a URL is given"
        assert (up.data_dir / "kek.keyring").exists()
        assert up.stop(signal.SIGINT) in (0, 130)
    finally:
        with psycopg.connect(EXTERNAL_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
