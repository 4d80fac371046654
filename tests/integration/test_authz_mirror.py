"""The authorization mirror: a new Project's grants are written by the worker after the Project's
transaction commits — never before — and within one worker cycle; in the window a check denies
(403 / decision denied), it never errors."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.conftest import make_stack, stop_stack, wait_until
from tests.integration.tenancy_support import keyring_of, new_domain

from plexsphere.config import Settings
from plexsphere.db.pool import connect, create_pool
from plexsphere.domain import projects as project_rules
from plexsphere.server.runtime import Runtime
from plexsphere.services import projects
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import utcnow
from plexsphere.worker import outbox as outbox_worker


def _tuples_of(stack, project_id: str) -> list[tuple]:
    return stack.sql("SELECT relation, subject_type FROM plexsphere.relation_tuples WHERE object_id = %s",
                     project_id)


def test_grant_never_lands_before_commit_and_lands_right_after(stack):
    admin = f"user:{stack.admin_id}"
    spec = project_rules.parse_create({"domain_id": str(stack.domain_id), "name": "Held", "slug": stack.unique("held")})

    def during_open_transaction(project_id: str) -> None:
        # Another Project created and mirrored meanwhile proves the worker ran at least one cycle
        # after our outbox row was written — yet nothing of ours may be visible. (Another Domain: our
        # open transaction holds the seeded Domain's sub-range lock.)
        stack.create_project(domain_id=new_domain(stack)["id"])
        assert _tuples_of(stack, project_id) == []
        with stack.http() as http:
            assert http.get(f"/v1/projects/{project_id}").status_code == 403
            check = http.post("/v1/authz/check", json={"subject": admin, "relation": "read",
                                                       "resource": f"project:{project_id}"})
            assert check.status_code == 200 and check.json()["decision"] == "denied"

    def after_commit(project_id: str) -> float:
        committed = time.monotonic()
        with stack.http() as http:
            wait_until(lambda: http.get(f"/v1/projects/{project_id}").status_code == 200, timeout=5,
                       message="mirrored grant")
        return time.monotonic() - committed

    async def scenario() -> float:
        conn = await connect(stack.database_url)
        try:
            tx = conn.transaction()
            await tx.start()
            row = await projects.insert_project(conn, admin, spec)
            project_id = str(row["id"])
            await asyncio.to_thread(during_open_transaction, project_id)
            await tx.commit()
            return await asyncio.to_thread(after_commit, project_id)
        finally:
            await conn.close()

    latency = asyncio.run(scenario())
    # NOTIFY wakes the worker at commit; its fallback poll is 1 s, so one cycle is well under that.
    assert latency < 1.0, latency


@pytest.fixture(scope="module")
def api_only_stack(postgres, tmp_path_factory):
    """A server with no worker: the mirror only advances when the test drains the outbox."""
    s = make_stack(postgres, tmp_path_factory.mktemp("apionly"), role="api")
    try:
        yield s
    finally:
        stop_stack(postgres, s)


async def _drain_one_cycle(stack) -> int:
    outbox_worker.load_handlers()
    keyring = keyring_of(stack)
    pool = await create_pool(stack.database_url, min_size=1, max_size=2)
    try:
        runtime = Runtime(Settings(database_url=stack.database_url), pool, keyring, None, SigningKeys(keyring),
                          utcnow())
        return await outbox_worker.drain_once(runtime)
    finally:
        await pool.close()


def test_window_denies_without_errors_and_one_cycle_closes_it(api_only_stack):
    stack = api_only_stack
    asyncio.run(_drain_one_cycle(stack))  # the seed's domain.created
    with stack.http() as http:
        resp = http.post("/v1/projects", json={"domain_id": str(stack.domain_id), "name": "Window",
                                               "slug": "window"})
        assert resp.status_code == 201
        project_id = resp.json()["id"]
        for _ in range(5):  # committed, not yet mirrored: consistently denied, never a 5xx
            assert http.get(f"/v1/projects/{project_id}").status_code == 403
            check = http.post("/v1/authz/check", json={"subject": f"user:{stack.admin_id}", "relation": "manage",
                                                       "resource": f"project:{project_id}"})
            assert check.status_code == 200 and check.json()["decision"] == "denied"
        assert _tuples_of(stack, project_id) == []
        assert asyncio.run(_drain_one_cycle(stack)) == 1
        assert sorted(_tuples_of(stack, project_id)) == [("admin", "user"), ("parent", "domain")]
        assert http.get(f"/v1/projects/{project_id}").status_code == 200
        # Replaying the same event (a crash between handler and delete) changes nothing.
        stack.sql("INSERT INTO plexsphere.outbox (topic, payload) VALUES ('project.created', %s::jsonb)",
                  f'{{"project_id": "{project_id}", "domain_id": "{stack.domain_id}", '
                  f'"created_by": "user:{stack.admin_id}"}}')
        asyncio.run(_drain_one_cycle(stack))
        assert len(_tuples_of(stack, project_id)) == 2


def test_resource_created_is_mirrored_idempotently_and_not_for_deleted_rows(api_only_stack):
    stack = api_only_stack
    with stack.http() as http:
        project_id = http.post("/v1/projects", json={"domain_id": str(stack.domain_id), "name": "R",
                                                     "slug": "res"}).json()["id"]
        asyncio.run(_drain_one_cycle(stack))
        resource = http.post(f"/v1/projects/{project_id}/resources", json={"origin": "adopted", "kind": "vm"})
        assert resource.status_code == 201
        rid = resource.json()["id"]
        assert http.get(f"/v1/resources/{rid}").status_code == 403  # parent tuple not mirrored yet
        # The register path enqueues the same topic for the same Resource; both rows are harmless.
        stack.sql("INSERT INTO plexsphere.outbox (topic, payload) VALUES ('resource.created', %s::jsonb)",
                  f'{{"resource_id": "{rid}", "project_id": "{project_id}"}}')
        asyncio.run(_drain_one_cycle(stack))
        assert _tuples_of(stack, rid) == [("parent", "project")]
        assert http.get(f"/v1/resources/{rid}").status_code == 200
        # A late event for a Resource already deleted grants nothing.
        assert http.delete(f"/v1/resources/{rid}").status_code == 204
        stack.sql("INSERT INTO plexsphere.outbox (topic, payload) VALUES ('resource.created', %s::jsonb)",
                  f'{{"resource_id": "{rid}", "project_id": "{project_id}"}}')
        asyncio.run(_drain_one_cycle(stack))
        assert _tuples_of(stack, rid) == []
