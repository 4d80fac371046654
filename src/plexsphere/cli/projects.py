"""`plexctl project`: create, list, get, update, delete."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import projects as api

app = typer.Typer(no_args_is_help=True, help="Projects: the units Nodes enrol into, inside a Domain.")

COLUMNS = [
    ("ID", lambda p: p["id"]),
    ("SLUG", lambda p: p["slug"]),
    ("NAME", lambda p: p["name"]),
    ("DOMAIN_ID", lambda p: p["domain_id"]),
    ("SUB_RANGE", lambda p: p.get("sub_range_cidr")),
]

ProjectArg = Annotated[str, typer.Argument(help="Project id")]


@app.command("create")
@handles_api_errors
def create(
    domain: Annotated[str, typer.Option("--domain", help="Domain id")],
    slug: Annotated[str, typer.Option("--slug", help="kebab-case, unique in the Domain, immutable")],
    display_name: Annotated[str | None, typer.Option("--display-name", "--name", help="default: slug")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    sub_range: Annotated[str | None, typer.Option("--sub-range", help="reserve a CIDR inside the Domain's")] = None,
    output: Output = OutputFormat.table,
) -> None:
    """Create a Project. Your admin grant on it lands a moment later (the authorization mirror)."""
    body = {"domain_id": domain, "slug": slug, "name": display_name or slug, "description": description,
            "sub_range_cidr": sub_range}
    with client() as c:
        emit(api.create(c, {k: v for k, v in body.items() if v is not None}), output, COLUMNS)


@app.command("list")
@handles_api_errors
def list_projects(domain: Annotated[str | None, typer.Option("--domain", help="only this Domain id")] = None,
                  output: Output = OutputFormat.table) -> None:
    """Projects you can see, in slug order."""
    with client() as c:
        items = list(api.list_all(c, domain))
    emit({"items": items, "next_cursor": None}, output, COLUMNS)


@app.command("get")
@handles_api_errors
def get(project: ProjectArg, output: Output = OutputFormat.table) -> None:
    with client() as c:
        emit(api.get(c, project), output, COLUMNS)


@app.command("update")
@handles_api_errors
def update(
    project: ProjectArg,
    display_name: Annotated[str | None, typer.Option("--display-name", "--name")] = None,
    description: Annotated[str | None, typer.Option("--description", help='"" clears')] = None,
    sub_range: Annotated[str | None, typer.Option("--sub-range")] = None,
    release_sub_range: Annotated[bool, typer.Option("--release-sub-range")] = False,
    output: Output = OutputFormat.table,
) -> None:
    body = {"name": display_name, "description": description, "sub_range_cidr": sub_range,
            "release_sub_range": True if release_sub_range else None}
    with client() as c:
        emit(api.patch(c, project, {k: v for k, v in body.items() if v is not None}), output, COLUMNS)


@app.command("delete")
@handles_api_errors
def delete(project: ProjectArg) -> None:
    """Delete an empty Project (refused while it has resources, nodes or granted tuples)."""
    with client() as c:
        api.delete(c, project)
    typer.echo(f"deleted project {project}")
