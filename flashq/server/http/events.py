"""Live job events over WebSocket (/ws, /ws/{queue}) and SSE (/events…), PROTOCOL §5.5-5.6.

Each stream is one `EventHub` subscription with a bounded buffer: a consumer that falls behind
loses the oldest events, and the stream says so (WebSocket: a `{"event_type":"dropped",
"dropped":n}` frame; SSE: an `event: dropped` message, which EventSource clients ignore unless
they listen for it) before the events that follow the gap. The subscription is made before
the stream is announced open, so an event caused after the client saw "connected" is never
missed.

Auth (when tokens are set): Bearer header or `?token=`; a WebSocket may instead send
`{"type":"auth","token":…}` as its first frame. At most 100 WebSockets are open at once
(events and dashboard together).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
import trio
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from flashq.server.events import EventFilter, Subscription, job_filter, queue_filter
from flashq.server.http.auth import bearer_token, token_valid, unauthorized
from flashq.server.http.context import wall_ms

if TYPE_CHECKING:
    from starlette.requests import Request

    from flashq.server.http.context import HttpContext

log = logging.getLogger("flashq.http.events")

MAX_WEBSOCKETS: Final = 100
AUTH_FRAME_TIMEOUT_S: Final = 10.0
SSE_KEEPALIVE_S: Final = 15.0
#: Close code for a WebSocket that failed the first-frame auth (RFC 6455 policy violation).
POLICY_VIOLATION: Final = 1008


class Admission(enum.Enum):
    DENIED = "denied"
    AUTHED = "authed"
    #: Auth is on and the client gave no token yet: it may send an auth frame after accept.
    NEEDS_FRAME = "needs-frame"


async def admit(ws: WebSocket, ctx: HttpContext) -> Admission:
    """Check the socket cap and any token given with the upgrade; deny with a status."""
    if ctx.websockets >= MAX_WEBSOCKETS:
        await ws.send_denial_response(PlainTextResponse("Too many WebSocket connections", 503))
        return Admission.DENIED
    tokens = ctx.settings.auth_tokens
    given = bearer_token(ws.headers) or ws.query_params.get("token")
    if not tokens:
        return Admission.AUTHED
    if given is None:
        return Admission.NEEDS_FRAME
    if not token_valid(tokens, given):
        await ws.send_denial_response(PlainTextResponse("Invalid or missing token", 401))
        return Admission.DENIED
    return Admission.AUTHED


async def auth_frame(ws: WebSocket, ctx: HttpContext) -> bool:
    """Wait for `{"type":"auth","token":…}`; close the socket unless it carries a valid token."""
    token = None
    with trio.move_on_after(AUTH_FRAME_TIMEOUT_S):
        message = await ws.receive()
        try:
            frame = orjson.loads(message.get("text") or message.get("bytes") or b"")
        except orjson.JSONDecodeError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "auth":
            token = frame.get("token")
    if isinstance(token, str) and token_valid(ctx.settings.auth_tokens, token):
        return True
    if message_closed(ws):
        return False
    await ws.close(POLICY_VIOLATION, "Invalid or missing token")
    return False


def message_closed(ws: WebSocket) -> bool:
    return ws.client_state.name == "DISCONNECTED" or ws.application_state.name == "DISCONNECTED"


async def serve_websocket(
    ws: WebSocket,
    ctx: HttpContext,
    produce: Callable[[WebSocket, Subscription | None], Awaitable[None]],
    accepts: EventFilter | None,
) -> None:
    """Admit, subscribe (when `accepts` is given), accept, then run `produce` until either side
    ends. Incoming frames are read and ignored (besides the auth frame), so a closing client is
    noticed at once."""
    admission = await admit(ws, ctx)
    if admission is Admission.DENIED:
        return
    ctx.websockets += 1
    sub: Subscription | None = None
    try:
        if admission is Admission.AUTHED and accepts is not None:
            sub = ctx.hub.subscribe(accepts)
        await ws.accept()
        if admission is Admission.NEEDS_FRAME:
            if not await auth_frame(ws, ctx):
                return
            if accepts is not None:
                sub = ctx.hub.subscribe(accepts)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_close, ws, nursery.cancel_scope)
            try:
                await produce(ws, sub)
            except (WebSocketDisconnect, RuntimeError):
                pass  # the peer went away while we were sending
            nursery.cancel_scope.cancel()
    finally:
        ctx.websockets -= 1
        if sub is not None:
            ctx.hub.unsubscribe(sub)


async def _watch_close(ws: WebSocket, scope: trio.CancelScope) -> None:
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    scope.cancel()


def _dropped(count: int) -> dict[str, Any]:
    return {"event_type": "dropped", "dropped": count, "timestamp": wall_ms()}


async def send_events(ws: WebSocket, sub: Subscription | None) -> None:
    assert sub is not None
    reported = 0
    while True:
        try:
            batch = await sub.receive_batch()
        except trio.EndOfChannel:
            return
        if sub.dropped > reported:
            await ws.send_text(orjson.dumps(_dropped(sub.dropped - reported)).decode())
            reported = sub.dropped
        for event in batch:
            await ws.send_text(orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS).decode())


def sse_message(event: dict[str, Any]) -> str:
    data = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS).decode()
    return f"event: {event.get('event_type')}\ndata: {data}\n\n"


async def _sse_stream(ctx: HttpContext, sub: Subscription) -> AsyncIterator[str]:
    try:
        yield ": connected\n\n"
        reported = 0
        while True:
            batch: list[dict[str, Any]] = []
            with trio.move_on_after(SSE_KEEPALIVE_S):
                batch = await sub.receive_batch()
            if not batch:
                yield ": keep-alive\n\n"
                continue
            if sub.dropped > reported:
                yield sse_message(_dropped(sub.dropped - reported))
                reported = sub.dropped
            yield "".join(sse_message(e) for e in batch)
    finally:
        ctx.hub.unsubscribe(sub)


def sse_response(request: Request, ctx: HttpContext, accepts: EventFilter) -> Response:
    tokens = ctx.settings.auth_tokens
    given = bearer_token(request.headers) or request.query_params.get("token")
    if tokens and not token_valid(tokens, given):
        return unauthorized()
    sub = ctx.hub.subscribe(accepts)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse_stream(ctx, sub), media_type="text/event-stream", headers=headers)


def routes(ctx: HttpContext) -> list[BaseRoute]:
    async def ws_all(ws: WebSocket) -> None:
        await serve_websocket(ws, ctx, send_events, queue_filter(None))

    async def sse_all(request: Request) -> Response:
        return sse_response(request, ctx, queue_filter(None))

    async def sse_queue(request: Request) -> Response:
        return sse_response(request, ctx, queue_filter(request.path_params["queue"]))

    async def sse_job(request: Request) -> Response:
        raw = request.path_params["id"]
        if not raw.isdigit():
            return PlainTextResponse(f"Invalid URL: Cannot parse `{raw}` to a `u64`", 400)
        names = request.query_params.get("events")
        types = {t.strip() for t in names.split(",") if t.strip()} if names else None
        return sse_response(request, ctx, job_filter(int(raw), types))

    return [
        Route("/events", sse_all),
        Route("/events/job/{id}", sse_job),
        Route("/events/{queue}", sse_queue),
        Route("/queues/{queue}/events", sse_queue),
        WebSocketRoute("/ws", ws_all),
    ]


def queue_ws_route(ctx: HttpContext) -> BaseRoute:
    """`/ws/{queue}` last, after `/ws/dashboard`, which would otherwise match it."""

    async def ws_queue(ws: WebSocket) -> None:
        await serve_websocket(ws, ctx, send_events, queue_filter(ws.path_params["queue"]))

    return WebSocketRoute("/ws/{queue}", ws_queue)
