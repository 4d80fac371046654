"""Unattended key renewal: every few seconds, start a rotation (requested_by `system:key-age`) for
each anchored Node whose public key is older than its Domain's `max_key_age` and that has no
rotation pending. Off unless a Domain sets max_key_age.

The sweep is one set-based query plus one insert per due Node; the partial unique index makes it
safe for several worker processes to sweep at once (only the inserter emits the `rotate_keys`)."""

from __future__ import annotations

import asyncio
import logging

from plexsphere.server.runtime import Runtime
from plexsphere.services import rotation

log = logging.getLogger(__name__)

# Short enough that renewal lags max_key_age by seconds, not minutes; the query filters on
# domains with max_key_age set first, so a sweep costs one index probe when the feature is off.
SWEEP_INTERVAL_S = 2.0
_TASK = "key_age_task"


async def sweep_once(runtime: Runtime) -> int:
    started = await rotation.trigger_due(runtime)
    if started:
        log.info("key-age renewal started %d rotation(s)", started)
    return started


async def _run(runtime: Runtime) -> None:
    while True:
        try:
            await sweep_once(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("key-age sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_S)


async def start(runtime: Runtime) -> None:
    runtime.extras[_TASK] = asyncio.create_task(_run(runtime), name="key-age-sweep")


async def stop(runtime: Runtime) -> None:
    task = runtime.extras.pop(_TASK, None)
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
