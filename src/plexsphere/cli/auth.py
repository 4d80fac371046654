"""plexctl login | logout | whoami and `plexctl auth token | tokens …`."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Annotated, Any

import httpx
import typer

from plexsphere.cli import credentials
from plexsphere.cli.main import client, fail, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit, key_values
from plexsphere.client import auth as api
from plexsphere.client.base import ApiClient, ApiError
from plexsphere.timeutil import parse_go_duration, rfc3339, utcnow

DEFAULT_URL = "http://127.0.0.1:8080"
ONCE_WARNING = "# WARNING: this is the only time this plaintext will be displayed"

auth_app = typer.Typer(no_args_is_help=True, help="Credentials: the current bearer and API tokens.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (psk_…) of the signed-in identity.")
auth_app.add_typer(tokens_app, name="tokens")

WHOAMI_FIELDS = ("principal_type", "subject", "domain_id", "email", "amr")
TOKEN_COLUMNS = [
    ("ID", lambda r: r.get("id")),
    ("ENV_PREFIX", lambda r: r.get("env_prefix")),
    ("CREATED_AT", lambda r: r.get("created_at")),
    ("EXPIRES_AT", lambda r: r.get("expires_at")),
    ("LAST_USED_AT", lambda r: r.get("last_used_at")),
    ("ROTATED_AT", lambda r: r.get("rotated_at")),
]


def _say(message: str) -> None:
    """Progress for people goes to stderr, so stdout stays the command's data."""
    typer.echo(message, err=True)
    sys.stderr.flush()


def _show_whoami(data: dict[str, Any], output: OutputFormat) -> None:
    if output != OutputFormat.table:
        emit(data, output)
        return
    pairs = [(k, ",".join(data[k]) if isinstance(data.get(k), list) else data.get(k)) for k in WHOAMI_FIELDS]
    typer.echo(key_values([(k, v) for k, v in pairs if v is not None]))


def _login_url(url: str | None) -> str:
    stored = credentials.load_credentials()
    return (url or os.environ.get("PLEXSPHERE_URL") or (stored.url if stored else None) or DEFAULT_URL).rstrip("/")


def _device_login(http: ApiClient, domain: str | None) -> dict[str, Any]:
    domain_id = api.local_provider(http, domain)["domain_id"]
    grant = api.device_code(http, domain_id)
    _say("Open this URL in a browser, sign in and approve the login:")
    _say(f"  {grant['verification_uri_complete']}")
    _say(f"Code: {grant['user_code']}")
    _say(f"Waiting for approval (the code expires in {grant['expires_in'] // 60} minutes)…")
    interval = max(1, int(grant["interval"]))
    while True:
        time.sleep(interval)  # RFC 8628 §3.5: never poll faster than the server's interval
        try:
            return api.device_token(http, grant["device_code"])
        except ApiError as err:
            if err.code == "authorization_pending":
                continue
            if err.code == "slow_down":
                interval += 5
                continue
            raise


def _password_login(http: ApiClient, username: str, password_stdin: bool) -> dict[str, Any]:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    if not password:
        fail("empty password")
    return api.local_sign_in(http, username, password)


@handles_api_errors
def login(
    url: Annotated[str | None, typer.Option("--url", help="Control plane URL [env PLEXSPHERE_URL]")] = None,
    domain: Annotated[str | None, typer.Option("--domain", help="Domain slug or id (default: the local "
                                                                 "identity provider's Domain)")] = None,
    username: Annotated[str | None, typer.Option("--username", help="Sign in with a local password instead "
                                                                     "of the browser device flow")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    output: Output = OutputFormat.table,
) -> None:
    """Log plexctl in: the device flow (approve in a browser), or --username for a local password."""
    if password_stdin and not username:
        fail("--password-stdin needs --username")
    base = _login_url(url)
    with ApiClient(base) as http:
        token = _password_login(http, username, password_stdin) if username else _device_login(http, domain)
    expires_at = rfc3339(utcnow() + timedelta(seconds=int(token["expires_in"])))
    with ApiClient(base, token["access_token"]) as http:
        me = api.whoami(http)
    subject = f"{me['principal_type']}:{me['subject']}"
    credentials.save_credentials(credentials.Credentials(url=base, token=token["access_token"], subject=subject,
                                                         expires_at=expires_at))
    _say(f"Logged in to {base} as {subject} (until {expires_at}); credentials in {credentials.credentials_path()}")
    if os.environ.get("PLEXSPHERE_TOKEN"):
        _say("note: PLEXSPHERE_TOKEN is set and overrides the stored login")
    _show_whoami(me, output)


def logout(output: Output = OutputFormat.table) -> None:
    """Sign out: revoke the stored login on the server and forget it locally."""
    stored = credentials.load_credentials()
    if stored is None:
        _say("not logged in")
        if output != OutputFormat.table:
            emit({"logged_out": False}, output)
        return
    try:
        with ApiClient(stored.url, stored.token) as http:
            api.sign_out(http)
    except (ApiError, OSError, httpx.HTTPError) as err:
        _say(f"warning: could not reach {stored.url} to end the session server-side: {err}")
    credentials.clear_credentials()
    if stored.token.startswith("psk_"):
        _say("note: the stored credential was an API token; it stays valid until revoked "
             "(`plexctl auth tokens revoke ID`)")
    _say(f"Logged out of {stored.url}")
    if output != OutputFormat.table:
        emit({"logged_out": True, "url": stored.url}, output)


@handles_api_errors
def whoami(output: Output = OutputFormat.table) -> None:
    """Show who the current credentials authenticate as."""
    with client() as http:
        _show_whoami(api.whoami(http), output)


# -- plexctl auth ----------------------------------------------------------------------------------
@auth_app.command("token")
def auth_token(output: Output = OutputFormat.table) -> None:
    """Print the current bearer token (for scripts: curl -H "Authorization: Bearer $(plexctl auth token)")."""
    creds = credentials.effective()
    if creds is None or not creds.token:
        fail("not logged in: run `plexctl login`")
    if output == OutputFormat.table:
        typer.echo(creds.token)
    else:
        emit({"token": creds.token}, output)


def parse_ttl(text: str) -> int:
    """`3600`, Go durations (`90m`, `720h`) or days (`30d`) → seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400
    duration = parse_go_duration(text)
    if duration is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 90m, 720h or 30d")
    return int(duration.total_seconds())


def _show_plaintext(data: dict[str, Any], output: OutputFormat, fields: tuple[str, ...]) -> None:
    if output != OutputFormat.table:
        emit(data, output)
        return
    typer.echo(ONCE_WARNING)
    typer.echo(data["plaintext"])
    typer.echo(key_values([(k, data.get(k)) for k in fields]))


@tokens_app.command("list")
@handles_api_errors
def tokens_list(output: Output = OutputFormat.table) -> None:
    """List your API tokens (never their plaintext)."""
    with client() as http:
        emit(api.list_tokens(http), output, TOKEN_COLUMNS)


@tokens_app.command("create")
@handles_api_errors
def tokens_create(
    identity: Annotated[str | None, typer.Option("--identity", help="user:<uuid> | service:<uuid> "
                                                                     "(default: yourself)")] = None,
    env_prefix: Annotated[str, typer.Option("--env-prefix", help="dev | stage | prod")] = "dev",
    ttl: Annotated[str | None, typer.Option("--ttl", help="Lifetime, e.g. 720h or 30d (default: "
                                                           "the server's)")] = None,
    output: Output = OutputFormat.table,
) -> None:
    """Issue an API token; its plaintext is shown this once."""
    ttl_seconds = parse_ttl(ttl) if ttl else None
    with client() as http:
        if identity is None:
            me = api.whoami(http)
            identity = f"{me['principal_type']}:{me['subject']}"
        issued = api.issue_token(http, identity, env_prefix, ttl_seconds)
    _show_plaintext(issued, output, ("id", "env_prefix", "expires_at"))


@tokens_app.command("revoke")
@handles_api_errors
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="Token id")],
                  output: Output = OutputFormat.table) -> None:
    """Revoke an API token at once (no grace period)."""
    with client() as http:
        api.revoke_token(http, token_id)
    if output == OutputFormat.table:
        typer.echo(f"revoked {token_id}")
    else:
        emit({"id": token_id, "revoked": True}, output)


@tokens_app.command("rotate")
@handles_api_errors
def tokens_rotate(token_id: Annotated[str, typer.Argument(help="Token id")],
                  output: Output = OutputFormat.table) -> None:
    """Replace an API token's plaintext; the old one works until the rotation deadline."""
    with client() as http:
        rotated, sunset = api.rotate_token(http, token_id)
    _show_plaintext(rotated, output, ("id", "env_prefix", "expires_at", "rotation_deadline"))
    if output == OutputFormat.table and sunset:
        _say(f"the previous plaintext stops working at {sunset}")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(auth_app, name="auth")
