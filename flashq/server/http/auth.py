"""Bearer-token auth for the HTTP API (PROTOCOL §5.1), with the event streams' extra ways in.

REST routes take `Authorization: Bearer <token>` only (a token in a URL ends up in logs).
Event streams also take `?token=` (EventSource and browsers' WebSocket cannot set headers) and,
for WebSockets, a first `{"type":"auth","token":…}` frame (the TypeScript SDK's way); those
checks live with the streams in `events.py`. Public: health, docs, Prometheus and the
dashboard's static files. Unlike upstream, `/webhooks/incoming/…` requires a token.
"""

from __future__ import annotations

import hmac
from typing import Final

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNAUTHORIZED_TEXT: Final = "Invalid or missing authentication token"
#: Paths anyone may read.
PUBLIC_PATHS: Final = frozenset(
    {"/health", "/docs", "/openapi.json", "/metrics/prometheus", "/", "/dashboard", "/favicon.ico"}
)
#: Paths whose own handler checks the token (header, `?token=` or first frame).
STREAM_PREFIXES: Final = ("/ws", "/events", "/static/")


def token_valid(tokens: tuple[str, ...], given: str | None) -> bool:
    """Constant-time check against every token, so timing does not reveal which one was near."""
    if not tokens:
        return True
    if given is None:
        return False
    raw = given.encode()
    found = False
    for token in tokens:
        found |= hmac.compare_digest(raw, token.encode())
    return found


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def stream_path(path: str) -> bool:
    """Event streams: /ws…, /events…, /queues/{q}/events (and static files, which are public)."""
    return path.startswith(STREAM_PREFIXES) or (
        path.startswith("/queues/") and path.endswith("/events")
    )


def public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith("/docs/")


def unauthorized() -> PlainTextResponse:
    return PlainTextResponse(UNAUTHORIZED_TEXT, 401, headers={"WWW-Authenticate": "Bearer"})


class BearerAuthMiddleware:
    """Refuse non-public HTTP requests without a valid Bearer token (401, upstream's text)."""

    def __init__(self, app: ASGIApp, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if public_path(path) or stream_path(path) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        if not token_valid(self.tokens, bearer_token(Headers(scope=scope))):
            await unauthorized()(scope, receive, send)
            return
        await self.app(scope, receive, send)
