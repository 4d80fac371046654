"""`plexctl domain`: list, get (by slug or id), create, update, delete, and the Domain's identities."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, fail, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import domains as api

app = typer.Typer(no_args_is_help=True, help="Domains: tenants, each with its own mesh CIDR and signing key.")

COLUMNS = [
    ("ID", lambda d: d["id"]),
    ("SLUG", lambda d: d["slug"]),
    ("NAME", lambda d: d["name"]),
    ("MESH_CIDR", lambda d: d["mesh_cidr"]),
    ("REGION", lambda d: d.get("region")),
]
IDENTITY_COLUMNS = [
    ("ID", lambda i: i["id"]),
    ("KIND", lambda i: i["kind"]),
    ("DISPLAY_NAME", lambda i: i["display_name"]),
    ("LAST_SIGN_IN_AT", lambda i: i.get("last_sign_in_at")),
    ("CREATED_AT", lambda i: i["created_at"]),
]

DomainArg = Annotated[str, typer.Argument(help="Domain slug or id")]


def _resolve(c, slug_or_id: str) -> dict:
    domain = api.find(c, slug_or_id)
    if domain is None:
        fail(f"no visible Domain with slug {slug_or_id!r}")
    return domain


@app.command("list")
@handles_api_errors
def list_domains(output: Output = OutputFormat.table) -> None:
    """Domains you can see, in slug order."""
    with client() as c:
        items = list(api.list_all(c))
    emit({"items": items, "next_cursor": None}, output, COLUMNS)


@app.command("get")
@handles_api_errors
def get(domain: DomainArg, output: Output = OutputFormat.table) -> None:
    """One Domain, by slug (e.g. acme-corp) or id."""
    with client() as c:
        emit(_resolve(c, domain), output, COLUMNS)


@app.command("create")
@handles_api_errors
def create(
    slug: Annotated[str, typer.Option("--slug", help="kebab-case, immutable")],
    mesh_cidr: Annotated[str, typer.Option("--mesh-cidr", help="canonical prefix, e.g. 10.42.0.0/16 or fd00:1::/64")],
    name: Annotated[str | None, typer.Option("--name", "--display-name", help="display name (default: slug)")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    region: Annotated[str | None, typer.Option("--region")] = None,
    env: Annotated[str | None, typer.Option("--env", help="signing key environment segment (default dev)")] = None,
    max_key_age: Annotated[str | None, typer.Option("--max-key-age", help="unattended key renewal, e.g. 720h")] = None,
    output: Output = OutputFormat.table,
) -> None:
    """Create a Domain (needs platform admin)."""
    body = {"name": name or slug, "slug": slug, "mesh_cidr": mesh_cidr, "description": description,
            "region": region, "env": env, "max_key_age": max_key_age}
    with client() as c:
        emit(api.create(c, {k: v for k, v in body.items() if v is not None}), output, COLUMNS)


@app.command("update")
@handles_api_errors
def update(
    domain: DomainArg,
    name: Annotated[str | None, typer.Option("--name", "--display-name")] = None,
    description: Annotated[str | None, typer.Option("--description", help='"" clears')] = None,
    region: Annotated[str | None, typer.Option("--region", help='"" unpins')] = None,
    mesh_cidr: Annotated[str | None, typer.Option("--mesh-cidr")] = None,
    max_key_age: Annotated[str | None, typer.Option("--max-key-age", help="0s turns renewal off")] = None,
    output: Output = OutputFormat.table,
) -> None:
    """Change a Domain's mutable fields (the slug never changes)."""
    body = {"name": name, "description": description, "region": region, "mesh_cidr": mesh_cidr,
            "max_key_age": max_key_age}
    with client() as c:
        target = _resolve(c, domain)
        emit(api.patch(c, target["id"], {k: v for k, v in body.items() if v is not None}), output, COLUMNS)


@app.command("delete")
@handles_api_errors
def delete(domain: DomainArg) -> None:
    """Delete an empty Domain (refused while it has projects, identities or nodes)."""
    with client() as c:
        target = _resolve(c, domain)
        api.delete(c, target["id"])
    typer.echo(f"deleted domain {target['slug']} ({target['id']})")


@app.command("identities")
@handles_api_errors
def identities(domain: DomainArg,
               kind: Annotated[str | None, typer.Option("--kind", help="user | service-identity")] = None,
               output: Output = OutputFormat.table) -> None:
    """Identities of a Domain, newest first."""
    with client() as c:
        target = _resolve(c, domain)
        items = list(api.list_identities(c, target["id"], kind))
    emit({"items": items, "next_cursor": None}, output, IDENTITY_COLUMNS)
