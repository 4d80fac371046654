"""Unattended key renewal: every few seconds, start a rotation (requested_by `system:key-age`) for
each anchored Node whose public key is older than its Domain's `max_key_age` and that has no
rotation pending. Off unless a Domain sets max_key_age.

The sweep is one set-based query plus one insert per due Node; the partial unique index makes it
safe for several worker processes to sweep at once (only the inserter emits the `rotate_keys`)."""

from __future__ import annotations

import logging

from plexsphere.server.runtime import Runtime
from plexsphere.services import rotation
from plexsphere.worker.periodic import Periodic

log = logging.getLogger(__name__)

# Short enough that renewal lags max_key_age by seconds, not minutes; the query filters on
# domains with max_key_age set first, so a sweep costs one index probe when the feature is off.
SWEEP_INTERVAL_S = 2.0


async def sweep_once(runtime: Runtime) -> int:
    started = await rotation.trigger_due(runtime)
    if started:
        log.info("key-age renewal started %d rotation(s)", started)
    return started


_periodic = Periodic("key-age-sweep", SWEEP_INTERVAL_S, sweep_once)
start = _periodic.start
stop = _periodic.stop
