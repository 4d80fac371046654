"""The benchmark harness: a PostgreSQL, a migrated + seeded database per scenario, a real
`plexsphere serve` subprocess, SQL prefill of N enrolled Nodes, /proc sampling of the server, and
the table printer.

PostgreSQL: PLEXSPHERE_BENCH_DATABASE_URL (a server-level URL whose user may CREATE DATABASE, e.g.
postgresql://postgres@127.0.0.1:5432/postgres), else an embedded server in a temporary folder
(the product's own, same settings as `plexsphere up`). One migrated template per run; each
scenario gets a fresh copy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import mmap
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_CIDR = "10.64.0.0/16"  # 65,534 hosts: room for 10,000 prefilled Nodes plus every registration
_counter = itertools.count(1)

# Limits the product applies to real users that would throttle a load generator on loopback.
SERVER_ENV = {
    "PLEXSPHERE_REGISTER_RATE_PER_MINUTE": "100000000",
    "PLEXSPHERE_REGISTER_BURST": "100000000",
    "PLEXSPHERE_LOG_LEVEL": "warning",
}


# -- small utilities ------------------------------------------------------------------------------
def raise_fd_limit(wanted: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def wait_for(predicate: Callable[[], Any], limit_s: float, interval: float = 0.01,
                   what: str = "condition") -> Any:
    """Awaits a (sync or async) predicate; raises TimeoutError with `what` after `limit_s`."""
    deadline = time.monotonic() + limit_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(interval)


# -- reporting ------------------------------------------------------------------------------------
@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append([str(c) for c in row])

    def render(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
                  for i, h in enumerate(self.headers)]
        line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
        out = [f"### {self.title}", "", line(self.headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(r) for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


REPORT: list[Table] = []


def emit(table: Table) -> Table:
    one, five, _ = os.getloadavg()
    table.notes.append(f"machine load average when printed: {one:.1f} (1 min), {five:.1f} (5 min) on "
                       f"{os.cpu_count()} CPUs — other work on the machine shares them")
    REPORT.append(table)
    print("\n" + table.render(), flush=True)
    return table


def machine_description() -> dict[str, str]:
    cpu = "unknown"
    try:
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                cpu = raw.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for raw in Path("/proc/meminfo").read_text().splitlines():
        if raw.startswith("MemTotal:"):
            mem_kib = int(raw.split()[1])
    return {
        "nproc": str(os.cpu_count()),
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }


# -- /proc sampling -------------------------------------------------------------------------------
class Proc:
    """CPU and memory of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def _status(self, key: str) -> int:
        for raw in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if raw.startswith(key + ":"):
                return int(raw.split()[1])
        return 0

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def peak_rss_kib(self) -> int:
        return self._status("VmHWM")

    def reset_peak(self) -> bool:
        """Resets VmHWM to the current RSS (Linux ≥ 4.0, needs write access to clear_refs)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False


class Sampler:
    """Samples a process's RSS and CPU (and optionally a SQL probe) on a thread every `interval`."""

    def __init__(self, proc: Proc, interval: float = 0.05, probe: Callable[[], Any] | None = None) -> None:
        self.proc, self.interval, self.probe = proc, interval, probe
        self.samples: list[tuple[float, int, float, Any]] = []  # (t, rss KiB, cpu s, probe)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                probe = self.probe() if self.probe else None
                self.samples.append((time.perf_counter() - self.t0, self.proc.rss_kib(),
                                     self.proc.cpu_seconds(), probe))
            except (OSError, psycopg.Error):
                pass
            self._stop.wait(self.interval)

    @property
    def peak_rss_kib(self) -> int:
        return max((s[1] for s in self.samples), default=0)


# -- PostgreSQL -----------------------------------------------------------------------------------
def _with_database(url: str, database: str) -> str:
    base, _, rest = url.rpartition("/")
    query = "?" + rest.split("?", 1)[1] if "?" in rest else ""
    return f"{base}/{database}{query}"


class Postgres:
    """The run's PostgreSQL server and its migrated template database."""

    def __init__(self) -> None:
        self.tmp: Path | None = None
        self.embedded = None
        url = os.environ.get("PLEXSPHERE_BENCH_DATABASE_URL")
        if not url:
            from plexsphere.db.embedded import EmbeddedPostgres

            self.tmp = Path(tempfile.mkdtemp(prefix="plexsphere-bench-pg-"))
            self.embedded = EmbeddedPostgres(self.tmp)
            self.embedded.start()
            url = self.embedded.url("postgres")
        self.admin_url = url
        self.template = f"pxbench_tpl_{os.getpid()}"
        self._create(self.template)
        from plexsphere.db.migrate import upgrade_to_head

        upgrade_to_head(_with_database(url, self.template))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{self.template}" WITH ALLOW_CONNECTIONS false')
        self.databases: list[str] = []

    @property
    def description(self) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        return f"PostgreSQL {version} ({'embedded' if self.embedded else 'PLEXSPHERE_BENCH_DATABASE_URL'})"

    def _create(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return _with_database(self.admin_url, name)

    def create_database(self) -> tuple[str, str]:
        name = f"pxbench_{os.getpid()}_{next(_counter)}"
        self.databases.append(name)
        return name, self._create(name, self.template)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{self.template}" WITH ALLOW_CONNECTIONS true')
        for name in [*self.databases, self.template]:
            self.drop_database(name)
        if self.embedded is not None:
            self.embedded.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- the server process ---------------------------------------------------------------------------
class ServerProcess:
    """A real `plexsphere serve` (uvicorn) subprocess, with its SQL statements counted."""

    def __init__(self, database_url: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"server-{self.port}.log"
        self.qcount_path = data_dir / f"qcount-{self.port}"
        self.qcount_path.write_bytes(bytes(8))
        env = dict(os.environ)
        env.update({
            "PLEXSPHERE_DATABASE_URL": database_url,
            "PLEXSPHERE_DATA_DIR": str(data_dir),
            "PLEXSPHERE_LISTEN": f"127.0.0.1:{self.port}",
            "PLEXSPHERE_BENCH_QCOUNT_FILE": str(self.qcount_path),
            "PYTHONPATH": f"{ROOT}:{env.get('PYTHONPATH', '')}",
            **SERVER_ENV,
        })
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, "-m", "bench.qcount", "serve", "--role", "all"], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.stats = Proc(self.proc.pid)
        fd = os.open(self.qcount_path, os.O_RDONLY)
        self._qcount = mmap.mmap(fd, 8, access=mmap.ACCESS_READ)
        os.close(fd)
        wait_healthy(self.url, self.proc, self.log)

    def queries(self) -> int:
        return struct.unpack("<Q", self._qcount[:8])[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def wait_healthy(url: str, proc: subprocess.Popen, log: Callable[[], str], path: str = "/v1/health",
                 timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early ({proc.returncode}):\n{log()}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"process did not become healthy:\n{log()}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- a seeded stack with a bench Domain -----------------------------------------------------------
@dataclass
class BenchNode:
    id: uuid.UUID
    mesh_ip: str
    public_key: bytes
    private_key: bytes
    nsk: bytes

    def bearer(self, env: str = "dev") -> str:
        from plexsphere.crypto import format_nsk_bearer

        return format_nsk_bearer(env, self.id, self.nsk)


@dataclass
class Stack:
    pg: Postgres
    db_name: str
    database_url: str
    data_dir: Path
    keyring: Any
    admin_token: str
    domain_id: uuid.UUID
    project_id: uuid.UUID
    server: ServerProcess | None = None
    nodes: list[BenchNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start_server(self, extra_env: dict[str, str] | None = None) -> ServerProcess:
        self.server = ServerProcess(self.database_url, self.data_dir, extra_env)
        return self.server

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def http(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.admin_headers(), timeout=60, **kw)

    def sql_value(self, query: str, *params: Any) -> Any:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(query, params or None).fetchone()
            return row[0] if row else None

    async def connect(self) -> asyncpg.Connection:
        from plexsphere.db.pool import connect

        return await connect(self.database_url)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.pg.drop_database(self.db_name)
        self.pg.databases.remove(self.db_name)
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def make_stack(pg: Postgres, *, start_server: bool = True, server_env: dict[str, str] | None = None) -> Stack:
    """A fresh database (migrated, seeded like `plexsphere up`) with a bench Domain holding one
    Project, an operator API token, and (by default) a running server."""
    from plexsphere.crypto import Keyring
    from plexsphere.ids import uuid7
    from plexsphere.services import bootstrap
    from plexsphere.timeutil import utcnow

    name, url = pg.create_database()
    data_dir = Path(tempfile.mkdtemp(prefix="plexsphere-bench-"))
    keyring = Keyring.load_or_create(data_dir / "kek.keyring", create=True)
    from plexsphere.db.pool import connect

    conn = await connect(url)
    try:
        seeded = await bootstrap.seed(conn, keyring)
        _, token = await bootstrap.mint_api_token(conn, keyring, seeded.admin_id)
        async with conn.transaction():
            domain_id = await bootstrap.insert_domain(conn, keyring, slug="bench", name="Bench", mesh_cidr=BENCH_CIDR,
                                                      created_by=f"user:{seeded.admin_id}")
            project_id = uuid7()
            now = utcnow()
            await conn.execute(
                """INSERT INTO projects (id, domain_id, slug, name, created_by, created_at, updated_at)
                   VALUES ($1, $2, 'fleet', 'Fleet', $3, $4, $4)""",
                project_id, domain_id, seeded.admin_id, now,
            )
            await bootstrap.grant(conn, "project", str(project_id), "parent", "domain", str(domain_id),
                                  project_id=project_id)
            await bootstrap.grant(conn, "project", str(project_id), "admin", "user", str(seeded.admin_id),
                                  project_id=project_id)
    finally:
        await conn.close()
    stack = Stack(pg, name, url, data_dir, keyring, token, domain_id, project_id)
    if start_server:
        stack.start_server(server_env)
        # Settle: the seed's mirror events are handled before anything is measured.
        await wait_for(lambda: stack.sql_value("SELECT count(*) FROM plexsphere.outbox") == 0, 30,
                       what="the seed's outbox to drain")
    return stack


# -- prefill --------------------------------------------------------------------------------------
def nsk_aad(node_id: uuid.UUID) -> bytes:
    """Associated data the enrolment service binds a wrapped NSK to."""
    from plexsphere.services.register import nsk_aad as product_nsk_aad

    return product_nsk_aad(node_id)


def make_nodes(count: int) -> list[tuple[uuid.UUID, bytes, bytes, bytes]]:
    """(node id, X25519 private, X25519 public, NSK) for `count` Nodes; ids are increasing UUIDv7s."""
    from plexsphere.crypto import random_bytes, x25519_keypair
    from plexsphere.ids import uuid7

    out = []
    for _ in range(count):
        private, public = x25519_keypair()
        out.append((uuid7(), private, public, random_bytes(32)))
    return out


async def prefill(stack: Stack, count: int, *, anchored: bool = True, project_id: uuid.UUID | None = None) -> list[BenchNode]:
    """Writes `count` enrolled Nodes (resource, node, and when `anchored` the peer and its live
    per-node PSK plus the authorization tuples) with COPY, and moves the address pool's high-water
    mark past them, as if each had registered and been anchored. Returns them in id order."""
    from plexsphere.crypto import random_bytes
    from plexsphere.ids import uuid7
    from plexsphere.services.psk import PSK_KID
    from plexsphere.services.psk import node_psk_aad as psk_aad
    from plexsphere.timeutil import utcnow

    project_id = project_id or stack.project_id
    network = ipaddress.ip_network(BENCH_CIDR)
    conn = await stack.connect()
    try:
        async with conn.transaction():
            start = await conn.fetchval("SELECT next_offset FROM address_pools WHERE domain_id = $1 FOR UPDATE",
                                        stack.domain_id)
            now = utcnow()
            keyring = stack.keyring
            resources, nodes, peers, psks, tuples, made = [], [], [], [], [], []
            for i, (node_id, private, public, nsk) in enumerate(make_nodes(count)):
                offset = start + i
                ip = network.network_address + offset
                resource_id = uuid7()
                handle = f"bench-{node_id.hex[-12:]}"
                resources.append((resource_id, project_id, stack.domain_id, handle, "node", "adopted", now, now))
                nodes.append((node_id, stack.domain_id, project_id, resource_id, "node", handle, "dev", public, now,
                              ipaddress.ip_interface(f"{ip}/32"), offset, keyring.wrap(nsk, nsk_aad(node_id)),
                              keyring.digest("nsk", nsk), now, now))
                if anchored:
                    peers.append((uuid7(), node_id, stack.domain_id, now, "healthy", now))
                    psks.append((uuid7(), node_id, PSK_KID, keyring.active_version, 1,
                                 keyring.wrap(random_bytes(32), psk_aad(node_id, 1)), now))
                tuples.append((uuid7(), "node", str(node_id), "parent", "project", str(project_id), project_id,
                               "mirror", now))
                tuples.append((uuid7(), "node", str(node_id), "agent", "node", str(node_id), project_id, "mirror", now))
                tuples.append((uuid7(), "resource", str(resource_id), "parent", "project", str(project_id), project_id,
                               "mirror", now))
                made.append(BenchNode(node_id, str(ip), public, private, nsk))
            await conn.copy_records_to_table(
                "resources", schema_name="plexsphere", records=resources,
                columns=["id", "project_id", "domain_id", "handle", "kind", "origin", "created_at", "updated_at"])
            await conn.copy_records_to_table(
                "nodes", schema_name="plexsphere", records=nodes,
                columns=["id", "domain_id", "project_id", "resource_id", "kind", "name", "env", "public_key",
                         "public_key_set_at", "mesh_ip", "host_offset", "nsk_wrapped", "nsk_digest", "created_at",
                         "updated_at"])
            if anchored:
                await conn.copy_records_to_table(
                    "peers", schema_name="plexsphere", records=peers,
                    columns=["id", "node_id", "domain_id", "anchored_at", "reachability", "reachability_changed_at"])
                await conn.copy_records_to_table(
                    "node_psks", schema_name="plexsphere", records=psks,
                    columns=["id", "node_id", "kid", "wrap_key_version", "epoch", "psk_wrapped", "created_at"])
            await conn.copy_records_to_table(
                "relation_tuples", schema_name="plexsphere", records=tuples,
                columns=["id", "object_type", "object_id", "relation", "subject_type", "subject_id", "project_id",
                         "source", "created_at"])
            await conn.execute("UPDATE address_pools SET next_offset = $2 WHERE domain_id = $1",
                               stack.domain_id, start + count)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    stack.nodes.extend(made)
    return made


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- profiling ------------------------------------------------------------------------------------
def start_profile(pid: int, label: str, duration: float) -> subprocess.Popen | None:
    """With BENCH_PROFILE=1, records the server with py-spy (if installed) into
    bench/profiles/<label>.txt as collapsed stacks; see `top_frames`."""
    if os.environ.get("BENCH_PROFILE") != "1":
        return None
    spy = Path(PYTHON).parent / "py-spy"
    if not spy.exists():
        print("BENCH_PROFILE=1 but py-spy is not installed (.venv/bin/pip install py-spy)", flush=True)
        return None
    out = ROOT / "bench" / "profiles"
    out.mkdir(exist_ok=True)
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "-d", str(int(duration)), "-f", "raw", "-r", "200",
                             "-o", str(out / f"{label}.txt"), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profile(proc: subprocess.Popen | None, label: str) -> None:
    if proc is None:
        return
    proc.wait(120)
    path = ROOT / "bench" / "profiles" / f"{label}.txt"
    if path.exists():
        print(f"profile {label} (top own-time frames, % of samples):", flush=True)
        for share, frame in top_frames(path):
            print(f"  {share:5.1f}%  {frame}", flush=True)


def top_frames(path: Path, limit: int = 15, inclusive_of: str = "plexsphere") -> list[tuple[float, str]]:
    """Own time per frame, plus the innermost plexsphere frame of each sample (where our code
    spent it), from a py-spy collapsed-stack file."""
    own: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        mine = next((f for f in reversed(frames) if inclusive_of in f), None)
        if mine:
            key = "[ours] " + mine
            ours[key] = ours.get(key, 0) + n
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:limit] + sorted(ours.items(), key=lambda kv: -kv[1])[:limit]
    return [(100 * n / max(total, 1), f) for f, n in ranked]
