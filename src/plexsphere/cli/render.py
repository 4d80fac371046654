"""One renderer for every plexctl command: tables for people, JSON/YAML (exactly the API's
objects) for scripts."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any

import typer
import yaml


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


Output = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table | json | yaml", case_sensitive=False)
]

Column = tuple[str, Callable[[dict[str, Any]], Any]]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Plain aligned columns, the tutorial's layout: two spaces between columns, and id columns
    (every cell a UUID) one wider. No box drawing, so output pipes cleanly into grep/awk."""
    header = [name for name, _ in columns]
    body = [[_cell(get(row)) for _, get in columns] for row in rows]
    widths = []
    for i, name in enumerate(header):
        cells = [r[i] for r in body]
        width = max([len(name), *(len(c) for c in cells)])
        if cells and all(_UUID.fullmatch(c) for c in cells):
            width += 1
        widths.append(width)
    lines = []
    for cells in [header, *body]:
        parts = [cell.ljust(widths[i]) if i < len(cells) - 1 else cell for i, cell in enumerate(cells)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def emit(data: Any, output: OutputFormat, columns: Sequence[Column] | None = None,
         rows: Sequence[dict[str, Any]] | None = None) -> None:
    """`data` is the API object printed for json/yaml; `rows` (default: data's items, or data itself)
    are the table rows."""
    if output == OutputFormat.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    if output == OutputFormat.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
        return
    if rows is None:
        if isinstance(data, dict) and "items" in data:
            rows = data["items"]
        elif isinstance(data, list):
            rows = data
        else:
            rows = [data]
    if columns is None:
        keys = list(rows[0].keys()) if rows else []
        columns = [(k.upper(), lambda r, k=k: r.get(k)) for k in keys]
    sys.stdout.write(table(rows, columns) + "\n")


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    return "\n".join(f"{k}: {_cell(v)}" for k, v in pairs)
