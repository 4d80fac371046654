"""Gate for the end-to-end layer: without root or the WireGuard tools these tests skip with the
reason, unless PLEXSPHERE_REQUIRE_E2E=1 (CI), where a missing prerequisite is a failure."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.netlab import missing_prerequisites

# Namespaces, veths and wireguard-go sockets are machine-wide and share the `pxe2e` prefix, so two
# e2e sessions on one machine (two checkouts) take turns; cleanup.sh takes the same lock. Package
# scope: the lock is released after the last e2e test, not held while the other layers run.
MACHINE_LOCK = "/tmp/plexsphere-e2e.lock"


@pytest.fixture(scope="package", autouse=True)
def e2e_machine_lock() -> Iterator[None]:
    with open(MACHINE_LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {MACHINE_LOCK}: another e2e session runs on this machine", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def e2e_prerequisites() -> None:
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "end-to-end prerequisites missing: " + ", ".join(missing)
    if os.environ.get("PLEXSPHERE_REQUIRE_E2E") == "1":
        pytest.fail(reason + " (PLEXSPHERE_REQUIRE_E2E=1 makes this a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nat_prerequisites(e2e_prerequisites) -> None:
    """The NAT lab's tools (nftables, conntrack) on top of the e2e layer's."""
    from tests.e2e.natlab import missing_nat_prerequisites

    missing = missing_nat_prerequisites()
    if not missing:
        return
    reason = "NAT lab prerequisites missing: " + ", ".join(missing)
    if os.environ.get("PLEXSPHERE_REQUIRE_E2E") == "1":
        pytest.fail(reason + " (PLEXSPHERE_REQUIRE_E2E=1 makes this a failure)")
    pytest.skip(reason)
