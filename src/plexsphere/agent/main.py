"""`plexd`: the node agent's command line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from plexsphere.agent.config import DEFAULT_CONFIG_FILE, ConfigError, load_config
from plexsphere.agent.identity import IdentityError, IdentityStore, public_key_of
from plexsphere.agent.model import key_b64
from plexsphere.agent.runtime import FatalAgentError, run_agent
from plexsphere.agent.wireguard import BACKEND_NAMES, WireGuardError, make_backend

app = typer.Typer(help="plexd: the plexsphere node agent.", no_args_is_help=True, add_completion=False)
log = logging.getLogger("plexd")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c",
                                                   help=f"YAML config file (default: {DEFAULT_CONFIG_FILE})")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"plexd: error: {message}", err=True)
    return typer.Exit(code=1)


@app.command()
def up(
    config_file: ConfigOpt = None,
    control_plane_url: Annotated[str | None, typer.Option(help="Control plane base URL")] = None,
    bootstrap_token: Annotated[str | None, typer.Option(help="Single-use bootstrap token")] = None,
    bootstrap_token_file: Annotated[Path | None, typer.Option(help="File holding the bootstrap token")] = None,
    project_id: Annotated[str | None, typer.Option(help="Project id (default: read from the token)")] = None,
    resource_id: Annotated[str | None, typer.Option(help="Resource handle (default: hostname)")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Identity and key directory (default: /var/lib/plexd)")] = None,
    interface: Annotated[str | None, typer.Option(help="WireGuard interface name (default: plexd0)")] = None,
    listen_port: Annotated[int | None, typer.Option(help="WireGuard UDP port (default: 51820)")] = None,
    backend: Annotated[str | None, typer.Option(help="auto|kernel|userspace|fake (default: auto)")] = None,
    advertise_endpoint: Annotated[str | None, typer.Option(
        help="ip:port peers dial (default: default-route address + listen port)")] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(help="Seconds between heartbeats (default: the Domain's interval)")] = None,
    down_on_exit: Annotated[bool | None, typer.Option(
        "--down-on-exit/--keep-on-exit", help="Remove the interface when plexd stops")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
) -> None:
    """Enrol this node (first start) and keep its WireGuard mesh in step with the control plane."""
    flags = {
        "control_plane_url": control_plane_url, "bootstrap_token": bootstrap_token,
        "bootstrap_token_file": bootstrap_token_file, "project_id": project_id, "resource_id": resource_id,
        "state_dir": state_dir, "interface": interface, "listen_port": listen_port, "backend": backend,
        "advertise_endpoint": advertise_endpoint, "heartbeat_interval": heartbeat_interval,
        "down_on_exit": down_on_exit, "log_level": log_level,
    }
    try:
        config = load_config(config_file, flags)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per HTTP request drowns plexd's own messages; transport failures surface through plexd.
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        wg = make_backend(config.backend, config.interface, run_dir=config.state_dir,
                          wireguard_go=config.wireguard_go)
    except WireGuardError as exc:
        raise _fail(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(config, wg, stop)

    try:
        asyncio.run(main())
    except FatalAgentError as exc:
        raise _fail(str(exc)) from None
    except WireGuardError as exc:
        raise _fail(f"WireGuard: {exc}") from None


@app.command()
def status(
    config_file: ConfigOpt = None,
    state_dir: Annotated[Path | None, typer.Option(help="Identity directory (default: /var/lib/plexd)")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table|json")] = "table",
) -> None:
    """Show this node's identity and the peers plexd last programmed."""
    try:
        config_dir = load_config(config_file, {"state_dir": state_dir, "control_plane_url": "http://unset"}).state_dir
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    store = IdentityStore(config_dir)
    try:
        identity = store.load()
        private_key = store.private_key()
    except (IdentityError, PermissionError) as exc:
        raise _fail(str(exc)) from None
    if identity is None:
        raise _fail(f"no identity in {config_dir}: this node has not enrolled yet")
    live = store.read_status() or {}
    report = {
        "node_id": str(identity.node_id),
        "project_id": str(identity.project_id),
        "resource_id": identity.resource_id,
        "control_plane_url": identity.control_plane_url,
        "mesh_ip": identity.mesh_ip,
        "domain_mesh_cidr": identity.domain_mesh_cidr,
        "public_key": key_b64(public_key_of(private_key)) if private_key else None,
        "signing_key_id": identity.signing_key_id,
        "interface": live.get("interface"),
        "backend": live.get("backend"),
        "last_heartbeat_at": live.get("last_heartbeat_at"),
        "updated_at": live.get("updated_at"),
        "peers": live.get("peers", []),
    }
    if output == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    if output != "table":
        raise _fail("--output must be table or json")
    for key in ("node_id", "project_id", "resource_id", "mesh_ip", "domain_mesh_cidr", "public_key",
                "signing_key_id", "interface", "backend", "last_heartbeat_at", "updated_at"):
        typer.echo(f"{key + ':':<20}{report[key] if report[key] is not None else '-'}")
    typer.echo("")
    rows = [("NODE_ID", "MESH_IP", "ENDPOINT", "PSK")] + [
        (p["node_id"], p["mesh_ip"], p.get("endpoint") or "-", "yes" if p.get("psk") else "pending")
        for p in report["peers"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        typer.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main() -> None:
    app()


__all__ = ["BACKEND_NAMES", "app", "main"]
