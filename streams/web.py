"""The HTTP side of a process: ``/metrics``, ``/healthz`` and ``/readyz``, on one aiohttp app.

Other parts (the floor view) add their routes to the same app, so a process serves everything on
one port. It binds to 127.0.0.1 unless configured otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger("agentload.web")

DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 9464


def create_app(is_ready: Callable[[], bool], registry: CollectorRegistry = REGISTRY) -> web.Application:
    """Return an app with the metrics and health endpoints; ``is_ready`` returns whether input is being consumed."""
    app = web.Application()

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        if is_ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving ``app``; return the runner to clean up with ``await runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("serving http://%s:%d/ (metrics, healthz, readyz)", host, port)
    return runner
