"""Validation of live responses against the public OpenAPI contract (../shared/reference/
plexsphere-openapi.yaml beside the repository): the schema of an operation's documented response
for the status we answered. The contract uses OpenAPI 3.0's `nullable`; it is translated to JSON
Schema's null type before validating."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    Path(os.environ["PLEXSPHERE_CONTRACT"]) if os.environ.get("PLEXSPHERE_CONTRACT") else None,
    ROOT.parent / "shared" / "reference" / "plexsphere-openapi.yaml",
]


def contract_path() -> Path | None:
    for path in CANDIDATES:
        if path is not None and path.is_file():
            return path
    return None


def _nullable_to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str) and "allOf" not in node and "$ref" not in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    if isinstance(node.get("$ref"), str):
        node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/$defs/")
    return node


class Contract:
    def __init__(self, path: Path) -> None:
        spec = yaml.safe_load(path.read_text())
        self.defs = _nullable_to_json_schema(spec["components"]["schemas"])
        self.operations: dict[str, dict] = {}
        for item in spec["paths"].values():
            for op in item.values():
                if isinstance(op, dict) and "operationId" in op:
                    self.operations[op["operationId"]] = op

    def response_schema(self, operation_id: str, status: int) -> dict | None:
        responses = self.operations[operation_id]["responses"]
        response = responses.get(str(status)) or responses.get("default")
        if response is None:
            raise AssertionError(f"{operation_id} documents no {status} response (has {sorted(responses)})")
        content = response.get("content") or {}
        for media in ("application/json", "application/problem+json"):
            if media in content:
                return _nullable_to_json_schema(content[media].get("schema"))
        return None

    def validate(self, operation_id: str, response: httpx.Response) -> Any:
        """Asserts the response's status is documented for the operation and its body matches."""
        schema = self.response_schema(operation_id, response.status_code)
        if schema is None:
            assert not response.content or response.status_code == 204, (operation_id, response.text[:300])
            return None
        body = response.json()
        validator = Draft202012Validator({**schema, "$defs": self.defs}, format_checker=FormatChecker(["uuid"]))
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{operation_id} {response.status_code}: " + "; ".join(
            f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:5])
        return body


@functools.cache
def load() -> Contract | None:
    path = contract_path()
    return Contract(path) if path else None
