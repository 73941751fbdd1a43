"""The REST API's plumbing: a route table that also feeds the docs, request parsing, and the
`{"ok": …, "data": …}` envelope of PROTOCOL §5.1.

Handlers take a `Call` and return the envelope's `data` (or a ready `Response`); they raise
`ApiError` for a malformed request and `CommandFailed` when the command itself answered
`ok: false`. Every command goes through `Router.execute`, so validation and error texts are
the TCP side's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson
import trio
from starlette.responses import Response

from flashq.protocol import routing

if TYPE_CHECKING:
    from starlette.requests import Request

    from flashq.server.http.context import HttpContext

#: Largest request body accepted (the TCP side's frame cap; job data itself stops at 10 MiB).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
#: Errors the command validator produces (a mistyped or missing field): HTTP 422.
_VALIDATION_PREFIX: Final = "Invalid: "
_U64_MAX: Final = 2**64 - 1
_PATH_PARAM = re.compile(r"{(\w+)}")

Handler = Callable[["Call"], Awaitable[Any]]


class ApiError(Exception):
    """A request the API cannot take as given: answered with `status` and the envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CommandFailed(Exception):
    """The command ran and answered `ok: false`; `error` is its exact wire text."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@attrs.frozen
class ApiRoute:
    """One REST route and what the docs say about it."""

    method: str
    path: str
    handler: Handler
    tag: str
    summary: str
    command: str | None = None
    body: str | None = None
    query: str | None = None
    returns: str = "null"
    public: bool = False
    alias: bool = False

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


class ApiGroup:
    """The routes of one tag, declared with the `route` decorator."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[ApiRoute] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        command: str | None = None,
        body: str | None = None,
        query: str | None = None,
        returns: str = "null",
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(
                ApiRoute(method, path, handler, self.tag, summary, command, body, query,
                         returns, public)
            )  # fmt: skip
            return handler

        return register

    def alias(self, method: str, path: str, handler: Handler, of: str) -> None:
        """A second spelling of a route (the TypeScript SDK's HTTP mode, PROTOCOL §6.3)."""
        self.routes.append(
            ApiRoute(method, path, handler, self.tag, f"Alias of {of} (TypeScript SDK)", alias=True)
        )


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def json_response(content: Any, status: int = 200) -> Response:
    return Response(json_bytes(content), status, media_type="application/json")


def ok(data: Any) -> Response:
    return json_response({"ok": True, "data": data})


def failed(error: str, status: int = 200) -> Response:
    return json_response({"ok": False, "error": error}, status)


class Call:
    """One REST request as a handler sees it: typed access to path, query and body."""

    def __init__(self, request: Request, ctx: HttpContext) -> None:
        self.request = request
        self.ctx = ctx

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def path_id(self, name: str = "id") -> int:
        """A job id in the path: a u64 in decimal, else 400 (as upstream's extractor)."""
        raw = self.path(name)
        if not raw.isdigit() or int(raw) > _U64_MAX:
            raise ApiError(400, f"Invalid URL: Cannot parse `{raw}` to a `u64`")
        return int(raw)

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def query_int(self, name: str, default: int) -> int:
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit():
            raise ApiError(400, f"Failed to deserialize query string: {name}: invalid digit")
        return int(raw)

    async def json(self) -> Any:
        """The body as any JSON value; an empty body reads as None."""
        raw = bytearray()
        async for chunk in self.request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise ApiError(413, f"Request body larger than {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            return None
        ctype = self.request.headers.get("content-type", "application/json")
        if "json" not in ctype:
            raise ApiError(415, "Expected request with `Content-Type: application/json`")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"Failed to parse the request body as JSON: {exc}") from exc

    async def body(self) -> dict[str, Any]:
        """The JSON object body; an empty body reads as `{}` (tolerant of bodiless POSTs)."""
        value = await self.json()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ApiError(422, f"{_VALIDATION_PREFIX}request body must be a JSON object")
        return value

    async def execute(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run one command; the reply as the TCP side would send it (no reqId).

        A blocking command (PULL, PULLB, WAITJOB) is abandoned when the client hangs up, so
        a job pulled for nobody goes back to its queue (see `HttpContext.execute`).
        """
        if cmd.get("cmd") not in routing.BLOCKING:
            return await self.ctx.execute(cmd)
        box: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._cancel_on_disconnect, nursery.cancel_scope)
            box.append(await self.ctx.execute(cmd))
            nursery.cancel_scope.cancel()
        if not box:
            raise ApiError(499, "Client closed the request")
        return box[0]

    async def _cancel_on_disconnect(self, scope: trio.CancelScope) -> None:
        while True:
            message = await self.request.receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run one command; its reply, or `CommandFailed` with the reply's error text."""
        reply = await self.execute(cmd)
        if not reply.get("ok"):
            raise CommandFailed(str(reply.get("error") or "Unknown error"))
        return reply


def endpoint(route: ApiRoute, ctx: HttpContext) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler into a Starlette endpoint that speaks the envelope."""

    async def handle(request: Request) -> Response:
        try:
            data = await route.handler(Call(request, ctx))
        except ApiError as exc:
            return failed(exc.message, exc.status)
        except CommandFailed as exc:
            return failed(exc.error, 422 if exc.error.startswith(_VALIDATION_PREFIX) else 200)
        except trio.TooSlowError:
            return failed("Server busy or starting, retry", 503)
        if isinstance(data, Response):
            return data
        return ok(data)

    return handle


def command(name: str, body: dict[str, Any], /, **fields: Any) -> dict[str, Any]:
    """A command from a request body plus path fields; the body cannot change `cmd`."""
    cmd = {k: v for k, v in body.items() if k != "reqId"}
    cmd.update(fields)
    cmd["cmd"] = name
    return cmd
