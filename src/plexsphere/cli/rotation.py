"""`plexctl key`: preview and trigger a Node's mesh-key rotation, and list its rotation history.
Completing a rotation is the Node's act (POST /v1/keys/rotate with its NSK), not the operator's."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit
from plexsphere.client import rotation as api

app = typer.Typer(no_args_is_help=True, help="Mesh-key rotation.")

NodeOption = Annotated[str, typer.Option("--node", help="Node id")]

PREVIEW_COLUMNS = [
    ("NODE_ID", lambda r: r["node_id"]),
    ("PEER_ID", lambda r: r["peer_id"]),
    ("AFFECTED_PEERS", lambda r: r["affected_peer_count"]),
    ("ALREADY_PENDING", lambda r: r["already_pending"]),
    ("ETA_SECONDS", lambda r: r["estimated_duration_seconds"]),
]

HISTORY_COLUMNS = [
    ("ROTATION_ID", lambda r: r["id"]),
    ("STATUS", lambda r: r["status"]),
    ("REQUESTED_BY", lambda r: r["requested_by"]),
    ("REQUESTED_AT", lambda r: r["requested_at"]),
    ("COMPLETED_AT", lambda r: r.get("completed_at")),
    ("KID", lambda r: r.get("kid")),
    ("WRAP_KEY_VERSION", lambda r: r.get("wrap_key_version")),
]


@app.command("rotate")
@handles_api_errors
def rotate(
    node: NodeOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--preview",
                                          help="show what a rotation would touch; record nothing")] = False,
    output: Output = OutputFormat.table,
) -> None:
    """Trigger a rotation of the Node's mesh key (the Node completes it with a key it generates)."""
    with client() as c:
        if dry_run:
            emit(api.preview(c, node), output, PREVIEW_COLUMNS)
            return
        result = api.trigger(c, node)
    # The trigger's answer has no node id; the table shows it so the row reads on its own.
    columns = [
        ("NODE_ID", lambda _r: node),
        ("PEER_ID", lambda r: r["peer_id"]),
        ("ROTATION_ID", lambda r: r["rotation_id"]),
        ("ALREADY_PENDING", lambda r: r["already_pending"]),
    ]
    emit(result, output, columns)


@app.command("rotations")
@handles_api_errors
def rotations(node: NodeOption, output: Output = OutputFormat.table) -> None:
    """A Node's rotation history, newest first."""
    with client() as c:
        items = api.all_history(c, node)
    emit({"items": items, "next_cursor": None}, output, HISTORY_COLUMNS)
