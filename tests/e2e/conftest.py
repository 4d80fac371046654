"""Gate for the end-to-end layer: without root or the WireGuard tools these tests skip with the
reason, unless PLEXSPHERE_REQUIRE_E2E=1 (CI), where a missing prerequisite is a failure."""

from __future__ import annotations

import os

import pytest

from tests.e2e.netlab import missing_prerequisites


@pytest.fixture(scope="session")
def e2e_prerequisites() -> None:
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "end-to-end prerequisites missing: " + ", ".join(missing)
    if os.environ.get("PLEXSPHERE_REQUIRE_E2E") == "1":
        pytest.fail(reason + " (PLEXSPHERE_REQUIRE_E2E=1 makes this a failure)")
    pytest.skip(reason)
