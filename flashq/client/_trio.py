"""The Trio runtime: a pipelined connection with one reader and one writer task, and the
primitives the worker needs.

A caller never owns the socket: it registers its request with the session, hands the
bytes to the writer and parks (`wait_task_rescheduled`, no Event per request); the reader
wakes it with the reply. Cancelling or timing out a caller only forgets its `reqId`, so
the stream is never left half-written. The two loops run in a system task, because a
client is opened without a nursery (`await FlashQ().connect()`, as upstream); they catch
every error and turn it into a failed connection, so nothing can escape into Trio's
system nursery.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, final

import outcome
import trio

from flashq.client._errors import ClientClosedError, ConnectError
from flashq.client._session import Reply, Session
from flashq.errors import ConnectionClosedError, FlashQError, TimeoutError_

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["TrioConnection", "TrioRuntime"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Big enough for a PULLB reply of 100 small jobs in one read.
_RECEIVE_BYTES = 256 * 1024


@final
class _Waiter:
    """A parked task waiting for one reply (`results is None`) or for several."""

    __slots__ = ("remaining", "results", "task")

    def __init__(self, task: trio.lowlevel.Task, count: int | None) -> None:
        self.task = task
        self.results: list[Reply] | None = None if count is None else [None] * count  # type: ignore[list-item]
        self.remaining = count or 1

    def deliver(self, index: int, reply: Reply) -> None:
        if self.results is None:
            trio.lowlevel.reschedule(self.task, outcome.Value(reply))
            return
        self.results[index] = reply
        self.remaining -= 1
        if self.remaining == 0:
            trio.lowlevel.reschedule(self.task, outcome.Value(self.results))


Slot = tuple[_Waiter, int]


@final
class TrioConnection:
    """One connection to the server under Trio (see `_runtime.Connection`)."""

    def __init__(self, stream: trio.abc.Stream, session: Session[Slot]) -> None:
        self._stream = stream
        self._session = session
        self._outbox: list[bytes] = []
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._scope = trio.CancelScope()
        self._closed = False

    @classmethod
    async def open(cls, options: ClientOptions) -> TrioConnection:
        """Connect (TCP, optional TLS), start the reader and writer, send AUTH if configured.

        Raises:
            ConnectError: the server could not be reached in `connect_timeout_s`.
            AuthenticationError: the token was refused.
        """
        where = f"{options.host}:{options.port}"
        stream: trio.abc.Stream
        try:
            with trio.fail_after(options.connect_timeout_s):
                stream = await trio.open_tcp_stream(options.host, options.port)
                if options.ssl_context is not None:
                    stream = trio.SSLStream(
                        stream, options.ssl_context, server_hostname=options.host
                    )
                    await stream.do_handshake()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            raise ConnectError(f"cannot connect to {where}: {exc or type(exc).__name__}") from exc
        conn = cls(stream, Session(binary=options.binary))
        trio.lowlevel.spawn_system_task(conn._run, name=f"flashq connection {where}")
        if options.token:
            try:
                await conn.request(
                    {"cmd": "AUTH", "token": options.token}, options.connect_timeout_s
                )
            except BaseException:
                await conn.aclose()
                raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed or self._session.closed_error is not None

    # -- requests ----------------------------------------------------------------------------

    async def request(self, fields: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        waiter = _Waiter(trio.lowlevel.current_task(), None)
        req_id, data = self._session.request(fields, (waiter, 0))
        self._send(data)
        reply: Reply = await self._park(waiter, (req_id,), timeout_s, fields.get("cmd"))
        if isinstance(reply, FlashQError):
            raise reply
        return reply

    async def request_many(
        self, requests: list[dict[str, Any]], timeout_s: float | None
    ) -> list[Reply]:
        if not requests:
            return []
        waiter = _Waiter(trio.lowlevel.current_task(), len(requests))
        req_ids: list[str] = []
        chunks: list[bytes] = []
        try:
            for index, fields in enumerate(requests):
                req_id, data = self._session.request(fields, (waiter, index))
                req_ids.append(req_id)
                chunks.append(data)
        except BaseException:
            for req_id in req_ids:
                self._session.forget(req_id)
            raise
        self._send(b"".join(chunks))
        cmd = requests[0].get("cmd")
        results: list[Reply] = await self._park(waiter, req_ids, timeout_s, cmd)
        return results

    async def _park(
        self, waiter: _Waiter, req_ids: tuple[str, ...] | list[str], timeout_s: float | None,
        cmd: Any,
    ) -> Any:  # fmt: skip
        def abort(_: Any) -> trio.lowlevel.Abort:
            for req_id in req_ids:
                self._session.forget(req_id)
            return trio.lowlevel.Abort.SUCCEEDED

        with trio.move_on_after(math.inf if timeout_s is None else timeout_s) as scope:
            return await trio.lowlevel.wait_task_rescheduled(abort)
        assert scope.cancelled_caught
        raise TimeoutError_(f"no reply to {cmd} within {timeout_s:g} s")

    def _send(self, data: bytes) -> None:
        self._outbox.append(data)
        self._writer_lot.unpark()

    # -- the connection's own tasks ----------------------------------------------------------

    async def _run(self) -> None:
        with self._scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    await self._read_loop()
                    nursery.cancel_scope.cancel()
            except Exception as exc:
                self._lost(ConnectionClosedError(f"connection lost: {exc!r}"))
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)

    async def _read_loop(self) -> None:
        session = self._session
        receive = self._stream.receive_some
        while True:
            try:
                data = await receive(_RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(ConnectionClosedError(f"connection lost: {exc}"))
                return
            if not data:
                self._lost(ConnectionClosedError("connection closed by the server"))
                return
            for (waiter, index), reply in session.receive(data):  # type: ignore[arg-type]
                waiter.deliver(index, reply)
            if session.closed_error is not None:  # undecodable stream
                return

    async def _write_loop(self) -> None:
        while True:
            if not self._outbox:
                await self._writer_lot.park()
                continue
            out, self._outbox = self._outbox, []
            try:
                await self._stream.send_all(out[0] if len(out) == 1 else b"".join(out))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(ConnectionClosedError(f"connection lost: {exc}"))
                return

    def _lost(self, exc: FlashQError) -> None:
        for (waiter, index), reply in self._session.connection_lost(exc):
            waiter.deliver(index, reply)
        self._scope.cancel()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._lost(ClientClosedError("connection closed by the client"))
        await trio.lowlevel.checkpoint()


@final
class _TaskGroup:
    """A nursery whose `cancel` reaches its children only, as asyncio's version does.

    Each child runs in its own cancel scope (a scope can be entered once), so the code in
    the body of `async with` can go on after cancelling, e.g. to clean up.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._scopes: set[trio.CancelScope] = set()
        self._cancelled = False

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._nursery.start_soon(self._child, fn, args)

    async def _child(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        with trio.CancelScope() as scope:
            if self._cancelled:
                scope.cancel()
            self._scopes.add(scope)
            try:
                await fn(*args)
            finally:
                self._scopes.discard(scope)

    def cancel(self) -> None:
        self._cancelled = True
        for scope in self._scopes:
            scope.cancel()


@final
class _Portal:
    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token

    def run(self, afn: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await afn()

        return trio.from_thread.run(call, trio_token=self._token)


@final
class TrioRuntime:
    """`_runtime.Runtime` for Trio; `thread_limit` caps `run_in_thread` concurrency."""

    name: Literal["trio"] = "trio"

    def __init__(self, thread_limit: int | None = None) -> None:
        self._limiter = trio.CapacityLimiter(thread_limit) if thread_limit else None

    async def open_connection(self, options: ClientOptions) -> TrioConnection:
        return await TrioConnection.open(options)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    def current_time(self) -> float:
        return trio.current_time()

    def lock(self) -> trio.Lock:
        return trio.Lock()

    def event(self) -> trio.Event:
        return trio.Event()

    @asynccontextmanager
    async def open_task_group(self) -> AsyncIterator[_TaskGroup]:
        async with trio.open_nursery() as nursery:
            yield _TaskGroup(nursery)

    async def wait_event(self, event: Any, timeout_s: float | None) -> bool:
        with trio.move_on_after(math.inf if timeout_s is None else timeout_s):
            await event.wait()
        return bool(event.is_set())

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(
            fn, *args, abandon_on_cancel=True, limiter=self._limiter
        )

    def portal(self) -> _Portal:
        return _Portal(trio.lowlevel.current_trio_token())

    @asynccontextmanager
    async def watch_signals(self, callback: Callable[[int], None]) -> AsyncIterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def pump() -> None:
                    async for signum in signals:
                        callback(signum)

                nursery.start_soon(pump)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()

    def shutdown(self) -> None:
        """Nothing to release: Trio owns its thread cache."""
