"""`plexctl authz`: check a permission, grant and revoke relation tuples, list a Project's tuples."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import authz as api

app = typer.Typer(no_args_is_help=True, help="Relationship-based authorization.")

TUPLE_COLUMNS = [
    ("ID", lambda t: t["id"]),
    ("SUBJECT", lambda t: t["subject"]),
    ("RELATION", lambda t: t["relation"]),
    ("RESOURCE", lambda t: t["resource"]),
    ("CREATED_AT", lambda t: t["created_at"]),
]
CHECK_COLUMNS = [
    ("DECISION", lambda d: d["decision"]),
    ("REASON", lambda d: d.get("reason") or "granted"),
    ("RELATION_PATH", lambda d: " -> ".join(d.get("relation_path") or [])),
    ("CORRELATION_ID", lambda d: d["correlation_id"]),
]

Subject = Annotated[str, typer.Option("--subject", help="e.g. user:<uuid>")]
Relation = Annotated[str, typer.Option("--relation", "--permission", help="e.g. admin, project-view, manage")]
Resource = Annotated[str, typer.Option("--resource", help="e.g. project:<uuid>")]
ProjectOption = Annotated[str, typer.Option("--project", help="Project id the tuple is filed under")]


@app.command("check")
@handles_api_errors
def check(subject: Subject, relation: Relation, resource: Resource, output: Output = OutputFormat.table) -> None:
    """Does SUBJECT hold RELATION on RESOURCE? Exits 0 when allowed, 2 when denied."""
    with client() as c:
        decision = api.check(c, subject, relation, resource)
    emit(decision, output, CHECK_COLUMNS)
    if decision["decision"] != "allowed":
        raise typer.Exit(2)


@app.command("grant")
@handles_api_errors
def grant(project: ProjectOption, subject: Subject, relation: Relation, resource: Resource,
          output: Output = OutputFormat.table) -> None:
    """Write a relation tuple (idempotent)."""
    with client() as c:
        emit(api.create_tuple(c, project, subject, relation, resource), output, TUPLE_COLUMNS)


@app.command("revoke")
@handles_api_errors
def revoke(tuple_id: Annotated[str, typer.Argument(help="relation tuple id (see `plexctl authz list`)")]) -> None:
    """Delete a relation tuple."""
    with client() as c:
        api.delete_tuple(c, tuple_id)
    typer.echo(f"revoked {tuple_id}")


@app.command("list")
@handles_api_errors
def list_tuples(project: ProjectOption, output: Output = OutputFormat.table) -> None:
    """Relation tuples filed under a Project."""
    with client() as c:
        items = list(api.list_tuples(c, project))
    emit({"items": items, "next_cursor": None}, output, TUPLE_COLUMNS)
