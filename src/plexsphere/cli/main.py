"""plexctl, the operator CLI. One module per noun (cli/<noun>.py) exporting a Typer `app` (a
command group) or `register(app)` for top-level commands; NOUNS lists them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import httpx
import typer

from plexsphere.cli import credentials
from plexsphere.client.base import ApiClient, ApiError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="plexsphere operator CLI.")

# (module, group name or None for top-level commands)
NOUNS: tuple[tuple[str, str | None], ...] = (
    ("auth", None),
    ("domains", "domain"),
    ("projects", "project"),
    ("resources", "resource"),
    ("authz", "authz"),
    ("bootstrap_tokens", "bootstrap-token"),
    ("nodes", "node"),
    ("peers", "peer"),
    ("topology", "mesh"),
    ("rotation", "key"),
    ("bridge", "bridge"),
)

F = TypeVar("F", bound=Callable[..., Any])


def client(require_token: bool = True) -> ApiClient:
    creds = credentials.effective()
    if creds is None:
        fail("not logged in: run `plexctl login --url URL` (or set PLEXSPHERE_URL and PLEXSPHERE_TOKEN)")
    if require_token and not creds.token:
        fail("no credentials: run `plexctl login` (or set PLEXSPHERE_TOKEN)")
    return ApiClient(creds.url, creds.token)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_problem(err: ApiError) -> None:
    problem = err.problem
    if err.status == 403 and problem.get("reason"):
        typer.echo(f"Permission Denied: {problem.get('reason')} ({problem.get('detail', '')})", err=True)
        if problem.get("relation_path"):
            typer.echo(f"  relation path: {' -> '.join(problem['relation_path'])}", err=True)
        if problem.get("correlation_id"):
            typer.echo(f"  correlation id: {problem['correlation_id']}", err=True)
        return
    title = problem.get("title") or f"HTTP {err.status}"
    typer.echo(f"Error: {title}: {problem.get('detail', '')}", err=True)
    if problem.get("code"):
        typer.echo(f"  code: {problem['code']}", err=True)
    for key in ("child_counts", "project_child_counts"):
        if problem.get(key):
            counts = ", ".join(f"{k}={v}" for k, v in problem[key].items())
            typer.echo(f"  {key}: {counts}", err=True)


def handles_api_errors(fn: F) -> F:
    """Turns an ApiError into the problem's title/detail/code on stderr and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as err:
            print_problem(err)
            raise typer.Exit(1) from None
        except (OSError, httpx.TransportError) as err:  # connection refused and friends
            typer.echo(f"error: cannot reach the control plane: {err}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _mount() -> None:
    for module_name, group in NOUNS:
        try:
            module = importlib.import_module(f"plexsphere.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"plexsphere.cli.{module_name}":
                raise
            continue
        if group is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=group)


def main() -> None:
    _mount()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
