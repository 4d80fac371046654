"""`plexctl resource`: list, create, get, delete — the handles Nodes enrol against."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import resources as api

app = typer.Typer(no_args_is_help=True, help="Resources: the substrates Nodes enrol as.")

COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("HANDLE", lambda r: r.get("handle")),
    ("KIND", lambda r: r["kind"]),
    ("ORIGIN", lambda r: r["origin"]),
    ("EXTERNAL_REF", lambda r: r.get("external_ref")),
    ("CREATED_AT", lambda r: r["created_at"]),
]

ProjectOption = Annotated[str, typer.Option("--project", help="Project id")]


@app.command("list")
@handles_api_errors
def list_resources(project: ProjectOption, output: Output = OutputFormat.table) -> None:
    """Resources of a Project, in creation order."""
    with client() as c:
        items = list(api.list_all(c, project))
    emit({"items": items, "next_cursor": None}, output, COLUMNS)


@app.command("create")
@handles_api_errors
def create(
    project: ProjectOption,
    kind: Annotated[str, typer.Option("--kind", help="e.g. vm, bridge, worker")] = "vm",
    external_ref: Annotated[str | None, typer.Option("--external-ref", help="the substrate's own reference")] = None,
    handle: Annotated[str | None, typer.Option("--handle", help="platform handle; default external-ref, else id")]
    = None,
    output: Output = OutputFormat.table,
) -> None:
    """Adopt an existing substrate as a Resource."""
    body = {"origin": "adopted", "kind": kind, "external_ref": external_ref, "handle": handle}
    with client() as c:
        emit(api.create(c, project, {k: v for k, v in body.items() if v is not None}), output, COLUMNS)


@app.command("get")
@handles_api_errors
def get(resource: Annotated[str, typer.Argument(help="Resource id")], output: Output = OutputFormat.table) -> None:
    with client() as c:
        emit(api.get(c, resource), output, COLUMNS)


@app.command("delete")
@handles_api_errors
def delete(resource: Annotated[str, typer.Argument(help="Resource id")]) -> None:
    """Delete an adopted Resource (refused while a Node is enrolled against it)."""
    with client() as c:
        api.delete(c, resource)
    typer.echo(f"deleted resource {resource}")
