"""The HTTP front end of the acceptor (:6790): Starlette app served by hypercorn's Trio worker.

Why these two: hypercorn runs natively on Trio (its `hypercorn.trio.serve` is a Trio task that
takes `task_status`), and Starlette runs on anyio, which runs on Trio; together they serve
plain routes, streaming SSE responses and WebSockets in the acceptor's own event loop, so the
HTTP side calls `Router.execute` and reads the `EventHub` directly, with no thread or second
loop in between. Both are small, typed and pure Python.

Middleware, outermost first: CORS (answers preflights itself), then Bearer auth.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from flashq.server.http import (
    api_jobs,
    api_queues,
    api_server,
    api_webhooks,
    dashboard,
    events,
    openapi,
)
from flashq.server.http.auth import BearerAuthMiddleware
from flashq.server.http.context import HttpContext, wall_ms
from flashq.server.http.endpoints import ApiRoute, endpoint, json_response
from flashq.server.http.metrics import MetricsRecorder
from flashq.server.http.webhooks import WebhookService

if TYPE_CHECKING:
    from starlette.requests import Request

    from flashq.config import Settings
    from flashq.server.events import EventHub
    from flashq.server.router import Router

log = logging.getLogger("flashq.http")

#: Server pings keep idle WebSockets (and the proxies between) alive (upstream: every 30 s).
WS_PING_INTERVAL_S = 30.0


def api_routes() -> list[ApiRoute]:
    """Every REST route, in matching order (specific spellings before `{id}` patterns)."""
    groups = (api_queues.api, api_jobs.api, api_server.api, api_webhooks.api, dashboard.api)
    return [route for group in groups for route in group.routes]


def cors_origins(setting: str) -> list[str]:
    origins = [o.strip() for o in setting.split(",") if o.strip()]
    return ["*"] if not origins or "*" in origins else origins


def build_app(ctx: HttpContext) -> Starlette:
    table = api_routes()
    document = openapi.openapi_document(table)
    docs_html = openapi.docs_page(table)

    async def openapi_json(request: Request) -> Response:
        return json_response(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_html)

    routes: list[BaseRoute] = [
        *events.routes(ctx),
        *dashboard.routes(ctx),
        events.queue_ws_route(ctx),
        Route("/openapi.json", openapi_json),
        Route("/docs", docs),
    ]
    routes += [Route(r.path, endpoint(r, ctx), methods=[r.method]) for r in table]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=cors_origins(ctx.settings.cors_allow_origin),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "Accept"],
        ),
        Middleware(BearerAuthMiddleware, tokens=ctx.settings.auth_tokens),
    ]
    return Starlette(routes=routes, middleware=middleware)


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.http_port}"]
    config.errorlog = logging.getLogger("flashq.http.server")
    config.accesslog = None
    config.websocket_ping_interval = WS_PING_INTERVAL_S
    config.graceful_timeout = 1.0
    return config


async def serve_http(
    settings: Settings,
    router: Router,
    hub: EventHub,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the HTTP API, event streams, webhooks and dashboard until cancelled.

    Calls `task_status.started()` once the port is bound. Registers the webhook deliveries as
    a hub listener (asking for events while any webhook exists) and runs the metrics sampler
    and webhook workers in its own nursery, so cancelling this task stops all of them.
    """
    async with trio.open_nursery() as nursery:
        metrics = MetricsRecorder()
        webhooks = WebhookService(router.execute, allow_private=settings.webhook_allow_private)
        ctx = HttpContext(settings, router, hub, nursery, metrics, webhooks)
        hub.listeners.append(webhooks.on_event)
        webhooks.on_change = functools.partial(hub.want, "webhooks")
        try:
            await nursery.start(webhooks.run)
            nursery.start_soon(metrics.run_sampler, ctx.execute, wall_ms)
            binds: Sequence[Any] = await nursery.start(_serve, build_app(ctx), settings)
            log.info("HTTP API listening on %s", ", ".join(map(str, binds)))
            task_status.started()
            await trio.sleep_forever()
        finally:
            hub.listeners.remove(webhooks.on_event)
            hub.want("webhooks", False)


async def _serve(app: Starlette, settings: Settings, *, task_status: trio.TaskStatus[Any]) -> None:
    # Starlette's ASGI types are looser than hypercorn's TypedDicts; the protocol is the same.
    await serve(cast(ASGIFramework, app), hypercorn_config(settings), task_status=task_status)
