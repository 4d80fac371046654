"""`plexctl mesh`: a Domain's mesh topology — every directed edge between anchored Nodes."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.nodes import domain_id_of
from plexsphere.cli.render import Output, OutputFormat, emit, key_values, table
from plexsphere.client import topology as api

app = typer.Typer(no_args_is_help=True, help="The Domain's mesh.")

COLUMNS = [
    ("FROM", lambda r: r["source_node_id"]),
    ("TO", lambda r: r["target_node_id"]),
    ("MESH_IP", lambda r: r["_mesh_ip"]),
    ("FALLBACK", lambda r: r.get("relay_node_id")),
    ("REACH_FROM", lambda r: r["_reach_from"]),
    ("REACH_TO", lambda r: r["_reach_to"]),
]


def edge_rows(topology: dict[str, Any]) -> list[dict[str, Any]]:
    """Edges joined with their ends' node facts (MESH_IP is the target's)."""
    nodes = {n["node_id"]: n for n in topology["nodes"]}
    rows = []
    for e in topology["edges"]:
        source, target = nodes.get(e["source_node_id"], {}), nodes.get(e["target_node_id"], {})
        rows.append({**e, "_mesh_ip": target.get("mesh_ip"), "_reach_from": source.get("reachability"),
                     "_reach_to": target.get("reachability")})
    rows.sort(key=lambda r: (r["source_node_id"], r["target_node_id"]))
    return rows


def render_summary(topology: dict[str, Any]) -> str:
    by_state: dict[str, int] = {}
    for n in topology["nodes"]:
        by_state[n["reachability"]] = by_state.get(n["reachability"], 0) + 1
    return key_values([
        ("domain_id", topology["domain_id"]),
        ("generated_at", topology["generated_at"]),
        ("nodes", len(topology["nodes"])),
        ("nodes_by_reachability", ", ".join(f"{k}={v}" for k, v in sorted(by_state.items())) or "-"),
        ("edges", topology.get("edge_count", len(topology["edges"]))),
        ("edges_by_mode", ", ".join(f"{k}={v}" for k, v in topology.get("edges_by_mode", {}).items())),
        ("edges_by_status", ", ".join(f"{k}={v}" for k, v in topology.get("edges_by_status", {}).items())),
    ])


def render(topology: dict[str, Any], summary: bool) -> str:
    return render_summary(topology) if summary else table(edge_rows(topology), COLUMNS)


@app.command("topology")
@handles_api_errors
def topology(
    domain: Annotated[str, typer.Option("--domain", help="Domain id or slug")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="redraw whenever the topology changes")] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between polls with --watch")] = 2.0,
    summary: Annotated[bool, typer.Option("--summary", help="counts instead of every edge (large Domains)")] = False,
    output: Output = OutputFormat.table,
) -> None:
    """The directed edges of the Domain's full mesh: N anchored Nodes give N×(N−1) edges."""
    with client() as c:
        domain_id = domain_id_of(c, domain)
        data = api.get(c, domain_id, summary=summary)
        if not watch:
            if output == OutputFormat.table:
                sys.stdout.write(render(data, summary) + "\n")
            else:
                emit(data, output)
            return
        shown = None
        try:
            while True:
                text = render(data, summary) if output == OutputFormat.table else None
                key = text if text is not None else _without_timestamp(data)
                if key != shown:
                    shown = key
                    if output == OutputFormat.table:
                        # Clear the screen only on a terminal, so piped output stays a plain log.
                        sys.stdout.write(("\x1b[H\x1b[2J" if sys.stdout.isatty() else "") + text + "\n")
                    else:
                        emit(data, output)
                    sys.stdout.flush()
                time.sleep(interval)
                data = api.get(c, domain_id, summary=summary)
        except KeyboardInterrupt:
            return


def _without_timestamp(data: dict[str, Any]) -> str:
    import json

    return json.dumps({k: v for k, v in data.items() if k != "generated_at"}, sort_keys=True)
