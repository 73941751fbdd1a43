"""GET /openapi.json and GET /docs, generated from the same route table the server runs.

The reference page is rendered here as plain HTML (the machine serving it may be offline, so
no Swagger UI from a CDN); it lists every route with its body, reply and TCP equivalent.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Final

from flashq.server.http.endpoints import ApiRoute

#: Routes outside the REST table: event streams and the dashboard.
STREAMS: Final = (
    ("GET", "/events", "SSE: every job event (`event: <type>`, `data: <JobEvent>`)"),
    ("GET", "/events/{queue}", "SSE: one queue's events"),
    ("GET", "/queues/{queue}/events", "SSE: one queue's events (TypeScript SDK path)"),
    ("GET", "/events/job/{id}", "SSE: one job's events; ?events=completed,failed filters"),
    ("WS", "/ws", "WebSocket: every job event, one JSON text frame each"),
    ("WS", "/ws/{queue}", "WebSocket: one queue's events"),
    ("WS", "/ws/dashboard", "WebSocket: a dashboard snapshot every DASHBOARD_INTERVAL_MS"),
    ("GET", "/dashboard", "The web dashboard (also at /)"),
)
_ENVELOPE: Final = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "data": {},
        "error": {"type": "string"},
    },
    "required": ["ok"],
}


def _operation(route: ApiRoute) -> dict[str, Any]:
    description = []
    if route.command:
        description.append(f"TCP equivalent: `{route.command}`.")
    description.append(f"`data`: {route.returns}.")
    op: dict[str, Any] = {
        "tags": [route.tag],
        "summary": route.summary,
        "description": " ".join(description),
        "operationId": f"{route.method.lower()}_{route.path.strip('/').replace('/', '_')}",
        "responses": {
            "200": {
                "description": "Envelope: {ok, data} or {ok: false, error}",
                "content": {"application/json": {"schema": _ENVELOPE}},
            },
            "401": {"description": "Invalid or missing authentication token"},
        },
    }
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in route.path_params
    ]
    for name in _query_names(route.query):
        params.append({"name": name, "in": "query", "required": False,
                       "schema": {"type": "string"}})  # fmt: skip
    if params:
        op["parameters"] = params
    if route.body:
        op["requestBody"] = {
            "required": False,
            "description": route.body,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    if route.public:
        op["security"] = []
    return op


def _query_names(query: str | None) -> list[str]:
    if not query:
        return []
    return [part.strip().split(" ")[0] for part in query.split(",") if part.strip()]


def _version() -> str:
    try:
        return metadata.version("flashq")
    except metadata.PackageNotFoundError:
        return "0"


def openapi_document(routes: Sequence[ApiRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flashQ HTTP API",
            "version": _version(),
            "description": "REST mirror of the flashQ commands. Every JSON route answers "
            '{"ok": true, "data": …} or {"ok": false, "error": "…"} with the TCP error text.',
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


_STYLE: Final = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1f2430;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
table{width:100%;border-collapse:collapse;background:#fff;font-size:14px}
td,th{padding:6px 10px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
code{font:13px ui-monospace,monospace}.m{font-weight:600;font-size:12px;padding:2px 6px;
border-radius:4px;color:#fff}.GET{background:#2f7de1}.POST{background:#1f9d55}
.DELETE{background:#d64545}.PUT,.PATCH{background:#c98a12}.WS{background:#7b4fd6}
.alias{color:#7a8190}.muted{color:#5f6675}
"""


def _row(method: str, path: str, summary: str, extra: str = "", alias: bool = False) -> str:
    cls = ' class="alias"' if alias else ""
    return (
        f"<tr{cls}><td><span class='m {method}'>{method}</span></td>"
        f"<td><code>{html.escape(path)}</code></td><td>{html.escape(summary)}{extra}</td></tr>"
    )


def docs_page(routes: Sequence[ApiRoute]) -> str:
    sections: dict[str, list[str]] = {}
    for route in routes:
        bits = []
        if route.body:
            bits.append(f"body <code>{html.escape(route.body)}</code>")
        if route.query:
            bits.append(f"query <code>{html.escape(route.query)}</code>")
        if not route.alias:
            bits.append(f"→ <code>{html.escape(route.returns)}</code>")
        if route.command:
            bits.append(f"TCP <code>{html.escape(route.command)}</code>")
        if route.public:
            bits.append("public")
        extra = "<br><span class='muted'>" + " · ".join(bits) + "</span>" if bits else ""
        sections.setdefault(route.tag, []).append(
            _row(route.method, route.path, route.summary, extra, route.alias)
        )
    sections["Events and dashboard"] = [_row(m, p, s) for m, p, s in STREAMS]
    body = "".join(
        f"<h2>{html.escape(tag)}</h2><table>{''.join(rows)}</table>"
        for tag, rows in sections.items()
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>flashQ HTTP API</title>"
        f"<style>{_STYLE}</style></head><body><main><h1>flashQ HTTP API</h1>"
        '<p class=\'muted\'>Replies: <code>{"ok":true,"data":…}</code> or '
        '<code>{"ok":false,"error":"…"}</code> (HTTP 200; 422 for invalid fields, 400 '
        "for malformed JSON). Auth: <code>Authorization: Bearer &lt;token&gt;</code> when the "
        "server has tokens; event streams also take <code>?token=</code>. Machine-readable: "
        f"<a href='/openapi.json'>/openapi.json</a>.</p>{body}</main></body></html>"
    )
