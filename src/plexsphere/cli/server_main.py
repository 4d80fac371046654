"""`plexsphere`: run the control plane. `up` is the one-command local stack (embedded PostgreSQL,
migrations, demo seed, local admin, plexctl login, API + worker); `serve` is the production
entry (no seed, no login); `migrate`; `db psql`; `admin` for local identities."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from plexsphere.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The plexsphere control plane.")
db_app = typer.Typer(no_args_is_help=True, help="Database access.")
admin_app = typer.Typer(no_args_is_help=True, help="Local identities.")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")

log = logging.getLogger("plexsphere")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="State folder [env PLEXSPHERE_DATA_DIR]")]
Listen = Annotated[str | None, typer.Option("--listen", help="HOST:PORT [env PLEXSPHERE_LISTEN]")]


def _settings(data_dir: Path | None = None, listen: str | None = None) -> Settings:
    overrides = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if listen is not None:
        overrides["listen"] = listen
    return Settings(**overrides)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


class Stack:
    """The database the stack uses: the configured URL, or the embedded server it starts (and stops)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = None

    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from plexsphere.db.embedded import EmbeddedPostgres

        self.embedded = EmbeddedPostgres(self.settings.data_dir)
        typer.echo(f"starting embedded PostgreSQL in {self.embedded.pgdata}", err=True)
        url = self.embedded.start()
        self.settings.database_url = url
        return url

    def stop(self) -> None:
        if self.embedded is not None:
            # An impatient second Ctrl-C must not abandon PostgreSQL half-way through stopping.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            typer.echo("stopping embedded PostgreSQL", err=True)
            self.embedded.stop()


def _migrate(url: str) -> None:
    from plexsphere.db.migrate import upgrade_to_head

    upgrade_to_head(url)


def _exit_on_sigterm() -> None:
    """uvicorn re-raises the signal that stopped it after shutdown; with the default SIGTERM action
    that would kill the process before `finally` stops the embedded PostgreSQL."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _serve(settings: Settings, workers: int) -> None:
    import uvicorn

    _exit_on_sigterm()

    host, port = settings.host, settings.port
    common = dict(host=host, port=port, log_level=settings.log_level.lower(), lifespan="on",
                  timeout_graceful_shutdown=5, access_log=False)
    if workers > 1:
        # Worker processes rebuild Settings from the environment.
        os.environ["PLEXSPHERE_DATABASE_URL"] = settings.database_url or ""
        os.environ["PLEXSPHERE_DATA_DIR"] = str(settings.data_dir)
        os.environ["PLEXSPHERE_LISTEN"] = settings.listen
        os.environ["PLEXSPHERE_ROLE"] = settings.role
        if settings.kek_file:
            os.environ["PLEXSPHERE_KEK_FILE"] = str(settings.kek_file)
        uvicorn.run("plexsphere.server.app:app_from_env", factory=True, workers=workers, **common)
        return
    from plexsphere.server.app import create_app

    uvicorn.run(create_app(settings), **common)


def _ensure_keyring(settings: Settings) -> None:
    from plexsphere.crypto import Keyring

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Keyring.load_or_create(settings.keyring_path, create=settings.kek_file is None)


@app.command()
def up(data_dir: DataDir = None, listen: Listen = None) -> None:
    """Start the whole local stack in the foreground (Ctrl-C stops everything it started)."""
    _exit_on_sigterm()  # from the start: a SIGTERM during migrations must still stop PostgreSQL
    settings = _settings(data_dir, listen)
    _setup_logging(settings.log_level)
    stack = Stack(settings)
    try:
        url = stack.database_url()
        _ensure_keyring(settings)
        _migrate(url)
        result = asyncio.run(_seed_and_login(settings))
        typer.echo(f"plexsphere is up at {settings.base_url}  (Domain acme-corp: {result.domain_id})", err=True)
        if result.admin_password:
            typer.echo(
                f"local admin created: username 'admin', password '{result.admin_password}' "
                "(shown once; change it with `plexsphere admin set-password`)",
                err=True,
            )
        typer.echo("plexctl is logged in; try `plexctl whoami`. Ctrl-C stops the stack.", err=True)
        _serve(settings, workers=1)
    finally:
        stack.stop()


async def _seed_and_login(settings: Settings):
    from plexsphere.cli.credentials import Credentials, load_credentials, save_credentials
    from plexsphere.crypto import Keyring
    from plexsphere.db.pool import connect
    from plexsphere.services import bootstrap

    keyring = Keyring.load_or_create(settings.keyring_path, create=False)
    conn = await connect(settings.database_url)
    try:
        result = await bootstrap.seed(conn, keyring)
        existing = load_credentials()
        reusable = False
        if existing and existing.url == settings.base_url and existing.token.startswith("psk_"):
            row = await conn.fetchrow(
                """SELECT 1 FROM api_tokens WHERE digest = $1 AND revoked_at IS NULL
                    AND expires_at > now() + interval '1 day'""",
                keyring.digest("api-token", existing.token),
            )
            reusable = row is not None
        elif existing and existing.url == settings.base_url and existing.token.startswith(("pxa_", "pxs_")):
            # Someone ran `plexctl login` against this stack: keep their login while it lasts.
            row = await conn.fetchrow(
                """SELECT 1 FROM access_tokens WHERE digest = $1 AND revoked_at IS NULL
                    AND expires_at > now() + interval '1 hour'""",
                keyring.digest("access-token", existing.token),
            )
            reusable = row is not None
        if not reusable:
            _, token = await bootstrap.mint_api_token(conn, keyring, result.admin_id)
            save_credentials(Credentials(url=settings.base_url, token=token, subject=f"user:{result.admin_id}"))
        return result
    finally:
        await conn.close()


@app.command()
def serve(
    data_dir: DataDir = None,
    listen: Listen = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    role: Annotated[str, typer.Option(help="all | api | worker")] = "all",
) -> None:
    """Serve the API and run the worker (production: no seed, no login)."""
    _exit_on_sigterm()
    settings = _settings(data_dir, listen)
    settings.role = role
    _setup_logging(settings.log_level)
    stack = Stack(settings)
    try:
        url = stack.database_url()
        _ensure_keyring(settings)
        _migrate(url)
        _serve(settings, workers=workers)
    finally:
        stack.stop()


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations and exit."""
    settings = _settings(data_dir)
    stack = Stack(settings)
    try:
        _migrate(stack.database_url())
        typer.echo("migrations applied")
    finally:
        stack.stop()


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """psql against the stack's database (extra arguments go to psql, e.g. -tAc "SELECT …")."""
    settings = _settings(data_dir)
    if settings.database_url:
        url = settings.database_url
        psql = "psql"
    else:
        from plexsphere.db.embedded import EmbeddedPostgres, psql_binary

        embedded = EmbeddedPostgres(settings.data_dir)
        if not embedded.is_running():
            typer.echo("the embedded PostgreSQL is not running; start the stack with `plexsphere up`", err=True)
            raise typer.Exit(2)
        url, psql = embedded.url(), psql_binary()
    env = dict(os.environ, PGOPTIONS="-c search_path=plexsphere,public")
    sys.exit(subprocess.call([psql, url, *ctx.args], env=env))


@admin_app.command("set-password")
def admin_set_password(
    username: Annotated[str, typer.Option()] = "admin",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    data_dir: DataDir = None,
) -> None:
    """Set a local identity's password (argon2id)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("New password", hide_input=True,
                                                                                     confirmation_prompt=True)
    if len(password) < 8:
        typer.echo("password must have at least 8 characters", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir)
    stack = Stack(settings)

    async def run() -> bool:
        from plexsphere.db.pool import connect
        from plexsphere.services.bootstrap import set_password

        conn = await connect(stack.database_url())
        try:
            return await set_password(conn, username, password)
        finally:
            await conn.close()

    if settings.database_url is None:
        from plexsphere.db.embedded import EmbeddedPostgres

        if not EmbeddedPostgres(settings.data_dir).is_running():
            typer.echo("the embedded PostgreSQL is not running; start the stack with `plexsphere up`", err=True)
            raise typer.Exit(2)
        settings.database_url = EmbeddedPostgres(settings.data_dir).url()
    if not asyncio.run(run()):
        typer.echo(f"no local identity named {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo("password updated")


def main() -> None:
    app()
