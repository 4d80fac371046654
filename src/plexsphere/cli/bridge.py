"""`plexctl bridge relay get|set|disable`: the relay of a bridge Resource (docs/nat.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from plexsphere.cli.main import client, handles_api_errors
from plexsphere.cli.render import Output, OutputFormat, emit, key_values
from plexsphere.client import bridge as api
from plexsphere.client import resources

app = typer.Typer(no_args_is_help=True, help="Bridge Nodes' services.")
relay = typer.Typer(no_args_is_help=True, help="The relay of a bridge Resource: Nodes whose direct edge cannot "
                    "form send their (still end-to-end encrypted) WireGuard packets through it.")
app.add_typer(relay, name="relay")

ResourceOption = Annotated[str, typer.Option("--resource", help="Bridge Resource id")]
ProjectOption = Annotated[str | None, typer.Option("--project", help="Project id (looked up from the Resource "
                                                                    "when omitted)")]
FIELDS = ("resource_id", "enabled", "listen_port", "created_at", "updated_at")


def _project(c, resource_id: str, project: str | None) -> str:
    return project or resources.get(c, resource_id)["project_id"]


def _show(config: dict, output: OutputFormat) -> None:
    if output != OutputFormat.table:
        emit(config, output)
        return
    typer.echo(key_values([(k, config.get(k)) for k in FIELDS]))


@relay.command("get")
@handles_api_errors
def get_relay(resource: ResourceOption, project: ProjectOption = None, output: Output = OutputFormat.table) -> None:
    """The relay configuration (404 when none is configured)."""
    with client() as c:
        _show(api.get_relay(c, _project(c, resource, project), resource), output)


@relay.command("set")
@handles_api_errors
def set_relay(resource: ResourceOption,
              listen_port: Annotated[int, typer.Option("--listen-port", help="UDP port the relay listens on; "
                                                                             "open it to Nodes")] = 3478,
              enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="Whether the relay runs")] = True,
              project: ProjectOption = None, output: Output = OutputFormat.table) -> None:
    """Configure (replace) the relay: Nodes of the Domain fall back to it within seconds."""
    with client() as c:
        _show(api.set_relay(c, _project(c, resource, project), resource, enabled=enabled, listen_port=listen_port),
              output)


@relay.command("disable")
@handles_api_errors
def disable_relay(resource: ResourceOption, project: ProjectOption = None,
                  output: Output = OutputFormat.table) -> None:
    """Stop relaying, keeping the configuration (its port) for a later `set`."""
    with client() as c:
        project_id = _project(c, resource, project)
        current = api.get_relay(c, project_id, resource)
        _show(api.set_relay(c, project_id, resource, enabled=False, listen_port=current["listen_port"]), output)
