"""The error tree every layer raises; server/problems.py renders it as application/problem+json.

    ProblemError                 any contract error: status + code (+ extension members)
    └── PermissionDeniedError    ReBAC 403 with the PermissionDenied body (reason, relation_path,
                                 correlation_id)

Raise `ProblemError(status, code, detail)` anywhere below the routes; the title defaults from the
status. Codes are the contract's `code` values, verbatim.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extensions = extensions


class PermissionDeniedError(ProblemError):
    def __init__(
        self,
        detail: str = "request rejected by authorization policy",
        *,
        reason: str = "insufficient_relation",
        relation_path: list[str] | None = None,
        correlation_id: str | None = None,
        code: str = "permission_denied",
        title: str = "Permission Denied",
    ) -> None:
        super().__init__(403, code, detail, title=title)
        self.reason = reason
        self.relation_path = relation_path or []
        self.correlation_id = correlation_id


def not_found(code: str, what: str) -> ProblemError:
    return ProblemError(404, code, f"{what} not found")


def unauthenticated(detail: str = "authentication required", code: str = "unauthenticated") -> ProblemError:
    return ProblemError(401, code, detail, headers={"WWW-Authenticate": "Bearer"})


def invalid_body(detail: str, code: str = "invalid_body", status: int = 400) -> ProblemError:
    return ProblemError(status, code, detail)
