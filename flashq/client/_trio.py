"""A pipelined connection under Trio: one reader and one writer task per connection.

A caller never owns the socket: it registers its request with the session, hands the
bytes to the writer and parks (`wait_task_rescheduled`, no Event per request); the reader
wakes it with the reply. Cancelling or timing out a caller only forgets its `reqId`, so
the stream is never left half-written. The two loops run in a system task, because a
client is opened without a nursery (`await FlashQ().connect()`, as upstream); they catch
every error and turn it into a failed connection, so nothing can escape into Trio's
system nursery.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
from typing import TYPE_CHECKING, Any, final

import outcome
import trio

from flashq.client._errors import ClientClosedError, ConnectError
from flashq.client._session import Reply, Session
from flashq.errors import ConnectionClosedError, FlashQError, TimeoutError_

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["TrioConnection"]

logger = logging.getLogger(__name__)

# Big enough for a PULLB reply of 100 small jobs in one read.
_RECEIVE_BYTES = 256 * 1024

Slot = tuple["_Waiter", int]


@final
class _Waiter:
    """A parked task waiting for one reply (`results is None`) or for several.

    It is woken exactly once: by its last reply, by its deadline (the connection's
    timeout sweeper), or not at all when its task is cancelled (`abort`).
    """

    __slots__ = ("done", "remaining", "req_ids", "results", "session", "task")

    def __init__(self, session: Session[Slot], count: int | None) -> None:
        self.task = trio.lowlevel.current_task()
        self.session = session
        self.results: list[Reply] | None = None if count is None else [None] * count  # type: ignore[list-item]
        self.remaining = count or 1
        self.req_ids: list[str] = []
        self.done = False

    def deliver(self, index: int, reply: Reply) -> None:
        if self.results is None:
            self.done = True
            trio.lowlevel.reschedule(self.task, outcome.Value(reply))
            return
        self.results[index] = reply
        self.remaining -= 1
        if self.remaining == 0:
            self.done = True
            trio.lowlevel.reschedule(self.task, outcome.Value(self.results))

    def expire(self, error: FlashQError) -> None:
        self.forget()
        self.done = True
        trio.lowlevel.reschedule(self.task, outcome.Value(error))

    def forget(self) -> None:
        for req_id in self.req_ids:
            self.session.forget(req_id)

    def abort(self, _: Any) -> trio.lowlevel.Abort:
        """The caller was cancelled: its replies will be dropped when they come."""
        self.forget()
        self.done = True
        return trio.lowlevel.Abort.SUCCEEDED


@final
class TrioConnection:
    """One connection to the server under Trio (see `_runtime.Connection`)."""

    def __init__(self, stream: trio.abc.Stream, session: Session[Slot]) -> None:
        self._stream = stream
        self._session = session
        self._outbox: list[bytes] = []
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._writer_parked = False
        # Request deadlines: one heap swept by one task. A cancel scope per request would
        # cost more than everything else a request does (measured: ~3x).
        self._deadlines: list[tuple[float, int, _Waiter, Any, float]] = []
        self._deadline_seq = 0
        self._sweep_scope: trio.CancelScope | None = None
        self._scope = trio.CancelScope()
        self._closed = False
        # The socket's descriptor, for writes that skip the hop to the writer task (-1: TLS,
        # whose bytes must go through the SSL object, or the connection is gone).
        self._fd: int = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1

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
        waiter = _Waiter(self._session, None)
        req_id, data = self._session.request(fields, (waiter, 0))
        waiter.req_ids.append(req_id)
        self._send(data)
        reply: Reply = await self._park(waiter, timeout_s, fields.get("cmd"))
        if isinstance(reply, FlashQError):
            raise reply
        return reply

    async def request_many(
        self, requests: list[dict[str, Any]], timeout_s: float | None
    ) -> list[Reply]:
        if not requests:
            return []
        waiter = _Waiter(self._session, len(requests))
        req_ids = waiter.req_ids
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
        result = await self._park(waiter, timeout_s, requests[0].get("cmd"))
        if isinstance(result, TimeoutError_):
            raise result
        results: list[Reply] = result
        return results

    async def _park(self, waiter: _Waiter, timeout_s: float | None, cmd: Any) -> Any:
        if timeout_s is not None:
            deadline = trio.current_time() + timeout_s
            self._deadline_seq += 1
            heap = self._deadlines
            if len(heap) > 2 * self._session.in_flight + 64:
                # Answered requests stay in the heap until their deadline; drop them now
                # and then so it stays proportional to what is in flight.
                heap[:] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(heap)
            heapq.heappush(heap, (deadline, self._deadline_seq, waiter, cmd, timeout_s))
            scope = self._sweep_scope
            if scope is not None and deadline < scope.deadline:
                scope.deadline = deadline  # rare: requests share one timeout, so it grows
        return await trio.lowlevel.wait_task_rescheduled(waiter.abort)

    async def _sweep_loop(self) -> None:
        """Wake each request whose deadline passed with a TimeoutError_."""
        heap = self._deadlines
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._sweep_scope = scope
                await trio.sleep_forever()
            self._sweep_scope = None
            now = trio.current_time()
            while heap and (heap[0][0] <= now or heap[0][2].done):
                _, _, waiter, cmd, timeout_s = heapq.heappop(heap)
                if not waiter.done:
                    waiter.expire(TimeoutError_(f"no reply to {cmd} within {timeout_s:g} s"))

    def _send(self, data: bytes) -> None:
        if self._writer_parked and self._fd >= 0:
            # Nothing queued and no send in progress: write now, as asyncio's transports do,
            # so the server starts on these requests while this task goes on (several
            # tasks pipelining would otherwise all finish before the writer runs, and the
            # server and the client take turns idling). The socket is non-blocking: what
            # does not fit, or an error, is left to the writer.
            try:
                sent = os.write(self._fd, data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        self._outbox.append(data)
        if self._writer_parked:  # else the writer takes it with the bytes it is sending
            self._writer_parked = False
            self._writer_lot.unpark()

    # -- the connection's own tasks ----------------------------------------------------------

    async def _run(self) -> None:
        with self._scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._sweep_loop)
                    await self._read_loop()
                    nursery.cancel_scope.cancel()
            except Exception as exc:
                self._lost(ConnectionClosedError(f"connection lost: {exc!r}"))
        self._fd = -1  # the descriptor number is free for reuse once the stream closes
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
                self._writer_parked = True
                await self._writer_lot.park()
                continue
            out, self._outbox = self._outbox, []
            try:
                await self._stream.send_all(out[0] if len(out) == 1 else b"".join(out))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._lost(ConnectionClosedError(f"connection lost: {exc}"))
                return

    def _lost(self, exc: FlashQError) -> None:
        self._fd = -1
        for (waiter, index), reply in self._session.connection_lost(exc):
            waiter.deliver(index, reply)
        self._scope.cancel()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._lost(ClientClosedError("connection closed by the client"))
        await trio.lowlevel.checkpoint()
