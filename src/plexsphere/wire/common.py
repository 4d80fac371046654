from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class WireModel(BaseModel):
    """Responses: unknown fields tolerated when parsing (clients must ignore additions)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class StrictRequest(BaseModel):
    """Requests whose contract rejects unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Page(WireModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class Problem(WireModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str | None = None
    reason: str | None = None
    relation_path: list[str] | None = None
    correlation_id: str | None = None
    child_counts: dict[str, int] | None = None
    project_child_counts: dict[str, int] | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    """The JSON object for a response: None-valued optional fields omitted unless the contract
    requires them present (models mark those with `json_schema_extra={'nullable_required': True}`)."""
    return model.model_dump(mode="json", exclude_none=True)
