"""`plexctl bootstrap-token`: issue, list, show and revoke the single-use credentials Nodes
redeem at POST /v1/register."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from plexsphere.cli.main import client, fail, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit, key_values
from plexsphere.client import bootstrap_tokens as api
from plexsphere.timeutil import parse_go_duration

app = typer.Typer(no_args_is_help=True, help="Single-use bootstrap tokens for enrolling Nodes.")

ProjectOption = Annotated[str, typer.Option("--project", help="Project id")]

ONCE_WARNING = "# WARNING: this is the only time this plaintext will be displayed"

LIST_COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("KIND", lambda r: r["kind"]),
    ("ENV", lambda r: r["env_prefix"]),
    ("ISSUED_AT", lambda r: r["issued_at"]),
    ("EXPIRES_AT", lambda r: r["expires_at"]),
    ("CONSUMED_AT", lambda r: r.get("consumed_at")),
    ("REVOKED_AT", lambda r: r.get("revoked_at")),
]

SHOW_FIELDS = ("id", "project_id", "kind", "env_prefix", "issued_at", "expires_at", "consumed_at", "revoked_at",
               "issued_by_user_id")


def ttl_seconds(text: str) -> int:
    """Go duration (`90s`, `30m`, `1h`, `24h`) → whole seconds; the server enforces [5m, 24h]."""
    duration = parse_go_duration(text)
    if duration is None or duration.total_seconds() <= 0 or duration.total_seconds() != int(duration.total_seconds()):
        fail(f"invalid --ttl {text!r}: use a Go duration in whole seconds such as 30m, 1h or 24h")
    return int(duration.total_seconds())


@app.command("issue")
@handles_api_errors
def issue(
    project: ProjectOption,
    kind: Annotated[str, typer.Option("--kind", help="node | bridge")] = "node",
    env_prefix: Annotated[str, typer.Option("--env-prefix", help="environment segment of the token, e.g. dev")] = "dev",
    ttl: Annotated[str, typer.Option("--ttl", help="lifetime as a Go duration, 5m to 24h")] = "1h",
    output: Output = OutputFormat.table,
) -> None:
    """Mint a token. The plaintext is printed once and never again."""
    seconds = ttl_seconds(ttl)
    with client() as c:
        issued = api.issue(c, project, kind, env_prefix, seconds)
    if output != OutputFormat.table:
        emit(issued, output)
        return
    sys.stdout.write("\n".join([
        ONCE_WARNING,
        issued["token"],
        key_values([("token_id", issued["token_id"]), ("issued_at", issued["issued_at"]),
                    ("expires_at", issued["expires_at"])]),
    ]) + "\n")


@app.command("list")
@handles_api_errors
def list_tokens(project: ProjectOption, output: Output = OutputFormat.table) -> None:
    """Every token of the Project (metadata only; plaintexts are never stored)."""
    with client() as c:
        items = list(api.list_all(c, project))
    emit({"items": items, "next_cursor": None}, output, LIST_COLUMNS)


@app.command("show")
@handles_api_errors
def show(project: ProjectOption, token_id: Annotated[str, typer.Argument(help="token id")],
         output: Output = OutputFormat.table) -> None:
    """One token's metadata."""
    with client() as c:
        token = api.get(c, project, token_id)
    if output != OutputFormat.table:
        emit(token, output)
        return
    sys.stdout.write(key_values([(f, token.get(f)) for f in SHOW_FIELDS]) + "\n")


@app.command("revoke")
@handles_api_errors
def revoke(project: ProjectOption, token_id: Annotated[str, typer.Argument(help="token id")],
           output: Output = OutputFormat.table) -> None:
    """Close the token's redemption window (409 if a Node redeemed it first, or it was revoked)."""
    with client() as c:
        api.revoke(c, project, token_id)
        if output != OutputFormat.table:  # DELETE answers 204: show the token as it now stands
            emit(api.get(c, project, token_id), output)
            return
    typer.echo(f"revoked {token_id}")
