"""The HTTP front end: REST API, event streams, webhooks, Prometheus metrics and the dashboard.

Runs inside the acceptor process when `--http` / `HTTP=1` is set; see `app.serve_http`.
"""

from __future__ import annotations

from flashq.server.http.app import serve_http as serve_http

__all__ = ["serve_http"]
