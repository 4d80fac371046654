"""`plexctl node`: the Node inventory — list, get, delete."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, fail, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit, key_values
from plexsphere.client import nodes as api

app = typer.Typer(no_args_is_help=True, help="Enrolled Nodes: list, inspect, delete.")

DomainOption = Annotated[str | None, typer.Option("--domain", help="Domain id or slug")]

COLUMNS = [
    ("ID", lambda r: r["id"]),
    ("NAME", lambda r: r.get("name")),
    ("KIND", lambda r: r.get("kind")),
    ("MESH_IP", lambda r: r.get("mesh_ip")),
    ("REACHABILITY", lambda r: r.get("reachability") or "pending"),
    ("ENDPOINT", lambda r: r.get("endpoint")),
    ("NAT", lambda r: r.get("nat_type")),
    ("PROJECT_ID", lambda r: r.get("project_id")),
    ("CREATED_AT", lambda r: r["created_at"]),
]

FIELDS = ("id", "name", "kind", "domain_id", "project_id", "mesh_ip", "reachability", "endpoint", "nat_type",
          "created_at")


def domain_id_of(c, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return api.resolve_domain_id(c, value)
    except LookupError as exc:
        fail(str(exc))
    return None


@app.command("list")
@handles_api_errors
def list_nodes(domain: DomainOption = None,
               project: Annotated[str | None, typer.Option("--project", help="Project id")] = None,
               output: Output = OutputFormat.table) -> None:
    """Every Node you may view (REACHABILITY `pending` until the Node is anchored)."""
    with client() as c:
        items = list(api.list_all(c, domain_id=domain_id_of(c, domain), project_id=project))
    emit({"items": items, "next_cursor": None}, output, COLUMNS)


@app.command("get")
@handles_api_errors
def get_node(node_id: Annotated[str, typer.Argument(help="Node id")], output: Output = OutputFormat.table) -> None:
    """One Node."""
    with client() as c:
        node = api.get(c, node_id)
    if output != OutputFormat.table:
        emit(node, output)
        return
    typer.echo(key_values([(k, node.get(k)) for k in FIELDS]))


@app.command("delete")
@handles_api_errors
def delete_node(node_id: Annotated[str, typer.Argument(help="Node id")], output: Output = OutputFormat.table) -> None:
    """Delete a Node: its Peer and keys go, its address returns to the pool, its NSK stops working
    at once, and every other Node of the Domain is told (peer_removed)."""
    with client() as c:
        api.delete(c, node_id)
    result = {"id": node_id, "deleted": True}
    if output != OutputFormat.table:
        emit(result, output)
        return
    typer.echo(f"node {node_id} deleted")
