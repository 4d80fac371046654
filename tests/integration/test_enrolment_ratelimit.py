"""Per-source rate limiting on the unauthenticated register seam."""

from __future__ import annotations

import pytest
from tests.conftest import make_stack, stop_stack
from tests.integration.enrolment_helpers import issue, make_project, register_body


@pytest.fixture(scope="module")
def stack(postgres, tmp_path_factory):
    s = make_stack(postgres, tmp_path_factory.mktemp("stack"),
                   extra_env={"PLEXSPHERE_REGISTER_RATE_PER_MINUTE": "6", "PLEXSPHERE_REGISTER_BURST": "3"})
    try:
        yield s
    finally:
        stop_stack(postgres, s)


def test_a_source_past_its_burst_gets_429_with_retry_after(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        tokens = [issue(http, project_id) for _ in range(2)]
    with stack.http(token="") as http:
        # Junk counts too: the limit is taken before the body is even read.
        assert http.post("/v1/register", json={}).status_code == 400
        assert http.post("/v1/register", json=register_body(project_id, tokens[0]["token"])).status_code == 200
        assert http.post("/v1/register", json=register_body(project_id, tokens[0]["token"])).status_code == 403
        limited = http.post("/v1/register", json=register_body(project_id, tokens[1]["token"]))
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 10  # one token per 10 s at 6/min
    # The refused registration touched nothing: its token is still live.
    assert stack.sql_value("SELECT consumed_at FROM plexsphere.bootstrap_tokens WHERE id = %s",
                           tokens[1]["token_id"]) is None


def test_operator_routes_are_not_limited_by_it(stack):
    project_id = make_project(stack)
    with stack.http() as http:
        assert all(http.get(f"/v1/projects/{project_id}/bootstrap-tokens").status_code == 200 for _ in range(10))
