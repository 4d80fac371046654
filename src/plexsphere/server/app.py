"""The ASGI application: `create_app(settings)` builds it; its lifespan owns the pool, the LISTEN
connection and (role all|worker) the outbox worker and sweepers."""

from __future__ import annotations

import dataclasses
import importlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from plexsphere import __version__
from plexsphere.config import Settings
from plexsphere.crypto import Keyring
from plexsphere.db.pool import create_pool
from plexsphere.server import problems
from plexsphere.server.notify import Notifier
from plexsphere.server.routes import ROUTERS
from plexsphere.server.runtime import Runtime
from plexsphere.services.signing import SigningKeys
from plexsphere.timeutil import utcnow

log = logging.getLogger(__name__)

# Area start-up hooks: modules exposing `async def start(runtime)` / `async def stop(runtime)`,
# run in this order (the SSE hub before routes serve, sweepers only where the worker runs).
API_HOOKS = ("plexsphere.server.sse", "plexsphere.server.stun")
WORKER_HOOKS = ("plexsphere.worker.sweeper", "plexsphere.worker.key_age")
# The outbox worker holds one connection per drain; the sweepers one each while they run.
WORKER_POOL_SIZE = 3


def _import_optional(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not settings.database_url:
            raise RuntimeError("PLEXSPHERE_DATABASE_URL is not set")
        keyring = Keyring.load_or_create(settings.keyring_path, create=False)
        pool = await create_pool(settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)
        notifier = Notifier(settings.database_url)
        runtime = Runtime(settings, pool, keyring, notifier, SigningKeys(keyring), utcnow())
        app.state.runtime = runtime
        hooks = []
        if settings.role in ("all", "api"):
            hooks += [m for m in map(_import_optional, API_HOOKS) if m]
        worker = worker_pool = None
        hook_runtimes = {hook: runtime for hook in hooks}
        if settings.role in ("all", "worker"):
            from plexsphere.worker.outbox import OutboxWorker

            # The worker and sweepers get their own small pool: a burst of API requests cannot
            # starve anchoring of connections, and a long anchoring batch cannot starve the API.
            worker_pool = await create_pool(settings.database_url, min_size=1, max_size=WORKER_POOL_SIZE)
            worker_runtime = dataclasses.replace(runtime, pool=worker_pool)
            worker = OutboxWorker(worker_runtime)
            worker.start()
            worker_hooks = [m for m in map(_import_optional, WORKER_HOOKS) if m]
            hooks += worker_hooks
            hook_runtimes.update({hook: worker_runtime for hook in worker_hooks})
        for hook in hooks:
            await hook.start(hook_runtimes[hook])
        await notifier.start()
        try:
            yield
        finally:
            for hook in reversed(hooks):
                await hook.stop(hook_runtimes[hook])
            if worker:
                await worker.stop()
            await notifier.stop()
            if worker_pool is not None:
                await worker_pool.close()
            await pool.close()

    app = FastAPI(
        title="plexsphere API",
        version=__version__,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    for name in ROUTERS:
        module = _import_optional(f"plexsphere.server.routes.{name}")
        if module is not None:
            app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Uvicorn factory entry (`plexsphere.server.app:app_from_env`) for multi-worker serving."""
    return create_app(Settings())
