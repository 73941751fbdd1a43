"""The dashboard: static page + one snapshot object, pushed over /ws/dashboard.

The page is plain HTML, CSS and JavaScript in `static/` (no build step, no CDN: the server
must work offline). It loads GET /dashboard/snapshot once, then listens on /ws/dashboard,
which sends the same snapshot every `dashboard_interval_ms` (PROTOCOL §5.5's keys, plus
`shards`, `latency`, `webhooks` and `events`). Browsing and actions use the REST routes.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from flashq.server.http.context import wall_ms
from flashq.server.http.endpoints import ApiGroup, Call, json_bytes
from flashq.server.http.events import serve_websocket
from flashq.server.http.metrics import latency_by_queue, latency_summary, process_summary

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.websockets import WebSocket

    from flashq.server.events import Subscription
    from flashq.server.http.context import HttpContext

api = ApiGroup("Dashboard")

_MEDIA: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


async def snapshot(ctx: HttpContext) -> dict[str, Any]:
    """Everything the dashboard shows at once, gathered concurrently."""
    stats, metrics, queues, crons = await ctx.execute_all(
        {"cmd": "STATS"}, {"cmd": "METRICS"}, {"cmd": "LISTQUEUES"}, {"cmd": "CRONLIST"}
    )
    procs = await ctx.router.process_stats()
    now = wall_ms()
    stats.pop("ok", None)
    return {
        "stats": stats,
        "metrics": metrics.get("metrics"),
        "queues": sorted(queues.get("queues") or [], key=lambda q: str(q.get("name"))),
        "workers": ctx.workers.live(now),
        "crons": crons.get("crons") or [],
        "metrics_history": list(ctx.metrics.history),
        "system_metrics": {
            "pid": os.getpid(),
            "uptime_ms": now - ctx.started_ms,
            "memory_rss_bytes": _rss_bytes(),
            "websockets": ctx.websockets,
            "storage": ctx.settings.storage,
            "auth": bool(ctx.settings.auth_tokens),
        },
        "sqlite_stats": None,
        "shards": process_summary(procs, stats.get("queues") or {}),
        "latency": latency_summary(latency_by_queue(procs)),
        "webhooks": ctx.webhooks.statistics(),
        "events": ctx.hub.statistics(),
        "timestamp": now,
    }


@api.route("GET", "/dashboard/snapshot", "Everything the dashboard shows",
           returns="DashboardSnapshot")  # fmt: skip
async def get_snapshot(call: Call) -> Any:
    return await snapshot(call.ctx)


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: they ship inside the package."""
    root = resources.files("flashq.server.http") / "static"
    files: dict[str, tuple[bytes, str]] = {}
    for entry in root.iterdir():
        suffix = os.path.splitext(entry.name)[1]
        if entry.is_file() and suffix in _MEDIA:
            files[entry.name] = (entry.read_bytes(), _MEDIA[suffix])
    return files


def routes(ctx: HttpContext) -> list[BaseRoute]:
    files = _static_files()
    no_cache = {"Cache-Control": "no-cache"}

    async def page(request: Request) -> Response:
        body, media = files["index.html"]
        return Response(body, media_type=media, headers=no_cache)

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            return Response("Not Found", 404, media_type="text/plain")
        return Response(found[0], media_type=found[1], headers=no_cache)

    async def push_snapshots(ws: WebSocket, _sub: Subscription | None) -> None:
        interval_s = max(0.05, ctx.settings.dashboard_interval_ms / 1000)
        while True:
            await ws.send_text(json_bytes(await snapshot(ctx)).decode())
            await trio.sleep(interval_s)

    async def ws_dashboard(ws: WebSocket) -> None:
        await serve_websocket(ws, ctx, push_snapshots, None)

    return [
        Route("/", page),
        Route("/dashboard", page),
        Route("/static/{name}", static),
        WebSocketRoute("/ws/dashboard", ws_dashboard),
    ]
