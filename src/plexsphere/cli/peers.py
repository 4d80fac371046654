"""`plexctl peer`: the anchored mesh Peers of a Domain."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.nodes import domain_id_of
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import nodes as api

app = typer.Typer(no_args_is_help=True, help="Mesh Peers (anchored Nodes).")

COLUMNS = [
    ("NODE_ID", lambda r: r["id"]),
    ("MESH_IP", lambda r: r.get("mesh_ip")),
    ("REACHABILITY", lambda r: r.get("reachability")),
]
# `--wide`: what each Node reported about its NAT (the tutorial's table keeps its three columns).
WIDE_COLUMNS = COLUMNS + [("ENDPOINT", lambda r: r.get("endpoint")), ("NAT", lambda r: r.get("nat_type"))]


@app.command("list")
@handles_api_errors
def list_peers(domain: Annotated[str, typer.Option("--domain", help="Domain id or slug")],
               wide: Annotated[bool, typer.Option("--wide", help="Add each Node's reported ENDPOINT and NAT type")]
               = False,
               output: Output = OutputFormat.table) -> None:
    """Every anchored Node of the Domain with its mesh IP and reachability. A Node appears a moment
    after it registers, once the control plane has anchored it."""
    with client() as c:
        items = [n for n in api.list_all(c, domain_id=domain_id_of(c, domain)) if n.get("reachability")]
    emit({"items": items, "next_cursor": None}, output, WIDE_COLUMNS if wide else COLUMNS)
