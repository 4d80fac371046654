"""Shared fixtures for the integration, sim and e2e layers.

- One PostgreSQL per test session: PLEXSPHERE_TEST_DATABASE_URL (a server-level URL whose user may
  CREATE DATABASE, e.g. the machine's postgresql://postgres@127.0.0.1:5432/postgres), else an
  embedded server started in a temporary folder.
- A migrated template database; every `stack` gets a fresh copy (CREATE DATABASE … TEMPLATE).
- `stack`: a real `plexsphere serve` process (uvicorn) on a free port against that fresh database,
  with the demo seed and an operator API token. Module scoped; tests in a module share it, so use
  unique slugs/CIDRs (see `stack.unique`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
_counter = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _with_database(url: str, database: str) -> str:
    base, _, rest = url.rpartition("/")
    query = ""
    if "?" in rest:
        query = "?" + rest.split("?", 1)[1]
    return f"{base}/{database}{query}"


@dataclass
class PostgresServer:
    admin_url: str  # connects to a maintenance database with CREATE DATABASE rights
    embedded: Any = None
    template: str | None = None

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return _with_database(self.admin_url, name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    url = os.environ.get("PLEXSPHERE_TEST_DATABASE_URL")
    tmp = None
    embedded = None
    if url:
        server = PostgresServer(admin_url=url)
    else:
        from plexsphere.db.embedded import EmbeddedPostgres

        tmp = Path(tempfile.mkdtemp(prefix="plexsphere-test-pg-"))
        embedded = EmbeddedPostgres(tmp)
        embedded.start()
        server = PostgresServer(admin_url=embedded.url("postgres"), embedded=embedded)
    template = f"px_tpl_{os.getpid()}"
    template_url = server.create_database(template)
    from plexsphere.db.migrate import upgrade_to_head

    upgrade_to_head(template_url)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        # A template must have no open connections when copied; alembic's are closed by now.
        conn.execute(f"ALTER DATABASE \"{template}\" WITH ALLOW_CONNECTIONS false")
    server.template = template
    try:
        yield server
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{template}\" WITH ALLOW_CONNECTIONS true")
        server.drop_database(template)
        if embedded is not None:
            embedded.stop()
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> Iterator[str]:
    """A migrated, empty database (no seed) for tests that talk to PostgreSQL directly."""
    name = f"px_{os.getpid()}_{next(_counter)}"
    url = postgres.create_database(name, postgres.template)
    try:
        yield url
    finally:
        postgres.drop_database(name)


class ServerProcess:
    """A real `plexsphere serve` (uvicorn) subprocess."""

    def __init__(self, database_url: str, data_dir: Path, *, listen_host: str = "127.0.0.1",
                 extra_env: dict[str, str] | None = None, role: str = "all") -> None:
        self.port = free_port()
        self.listen_host = listen_host
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / f"server-{self.port}.log"
        env = dict(os.environ)
        env.update({
            "PLEXSPHERE_DATABASE_URL": database_url,
            "PLEXSPHERE_DATA_DIR": str(data_dir),
            "PLEXSPHERE_LISTEN": f"{listen_host}:{self.port}",
            "PLEXSPHERE_LOG_LEVEL": "info",
        })
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "plexsphere"), "serve", "--role", role],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Stack:
    """A running control plane on a fresh database, seeded like `plexsphere up`."""

    database_url: str
    data_dir: Path
    server: ServerProcess
    admin_id: uuid.UUID
    admin_token: str
    domain_id: uuid.UUID  # the seeded acme-corp Domain
    config_home: Path
    _extra_servers: list[ServerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, token: str | None = None):
        from plexsphere.client.base import ApiClient

        return ApiClient(self.url, self.admin_token if token is None else token)

    def http(self, token: str | None = None, **kw: Any) -> httpx.Client:
        """Raw httpx client with the admin bearer (or `token`; pass "" for none)."""
        tok = self.admin_token if token is None else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def sql_value(self, query: str, *params: Any) -> Any:
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None

    @property
    def env(self) -> dict[str, str]:
        """Environment for a plexctl subprocess logged in as the admin."""
        env = dict(os.environ)
        env.update({
            "PLEXSPHERE_URL": self.url,
            "PLEXSPHERE_TOKEN": self.admin_token,
            "XDG_CONFIG_HOME": str(self.config_home),
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
        })
        return env

    def plexctl(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
                input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([str(VENV_BIN / "plexctl"), *args], env=env or self.env, capture_output=True,
                                text=True, input=input, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"plexctl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def start_extra_server(self, **kw: Any) -> ServerProcess:
        """Another `serve` process on the same database (multi-process tests)."""
        server = ServerProcess(self.database_url, self.data_dir, **kw)
        self._extra_servers.append(server)
        return server

    def unique(self, prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    _cidr_counter = itertools.count(1)

    def unique_cidr(self, prefix_len: int = 24) -> str:
        """A CIDR no other Domain of this session uses (10.128.0.0/9 is left to tests)."""
        n = next(Stack._cidr_counter)
        return f"10.{128 + (n // 256) % 128}.{n % 256}.0/{prefix_len}"

    def create_project(self, slug: str | None = None, domain_id: uuid.UUID | None = None) -> dict:
        """A Project in the seeded Domain, waiting until the creator's mirrored grant has landed."""
        with self.http() as http:
            resp = http.post("/v1/projects", json={"domain_id": str(domain_id or self.domain_id),
                                                   "name": "Test Project", "slug": slug or self.unique("p")})
            assert resp.status_code == 201, resp.text
            project = resp.json()
            wait_until(lambda: http.get(f"/v1/projects/{project['id']}").status_code == 200, timeout=10,
                       message="project grant to reach the mirror")
        return project


def make_stack(postgres: PostgresServer, tmp_root: Path, **server_kw: Any) -> Stack:
    import asyncio

    from plexsphere.crypto import Keyring
    from plexsphere.db.pool import connect
    from plexsphere.services import bootstrap

    name = f"px_{os.getpid()}_{next(_counter)}"
    database_url = postgres.create_database(name, postgres.template)
    data_dir = tmp_root / name
    data_dir.mkdir(parents=True)
    keyring = Keyring.load_or_create(data_dir / "kek.keyring", create=True)

    async def seed():
        conn = await connect(database_url)
        try:
            result = await bootstrap.seed(conn, keyring)
            _, token = await bootstrap.mint_api_token(conn, keyring, result.admin_id)
            return result, token
        finally:
            await conn.close()

    result, token = asyncio.run(seed())
    server = ServerProcess(database_url, data_dir, **server_kw)
    config_home = data_dir / "config"
    config_home.mkdir()
    stack = Stack(database_url, data_dir, server, result.admin_id, token, result.domain_id, config_home)
    stack._db_name = name  # type: ignore[attr-defined]
    return stack


def stop_stack(postgres: PostgresServer, stack: Stack) -> None:
    for server in [*stack._extra_servers, stack.server]:
        server.stop()
    postgres.drop_database(stack._db_name)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(postgres, tmp_path_factory.mktemp("stack"))
    try:
        # The seeded Domain's parent tuple is mirrored by the worker; wait so tests start settled.
        wait_until(lambda: s.sql_value("SELECT count(*) FROM plexsphere.outbox") == 0, message="outbox drained")
        yield s
    finally:
        stop_stack(postgres, s)
