"""A pipelined connection under asyncio, on a `Protocol`.

asyncio's transport already buffers writes and calls `data_received` for reads, so a
connection needs no task at all: a request writes its bytes and awaits a future; the
protocol callback resolves futures by `reqId`. Requests made in the same loop iteration
(a worker's acks and its next pull) leave in one write, flushed by a `call_soon`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, final

from flashq.client._errors import ClientClosedError, ConnectError
from flashq.client._session import Reply, Session
from flashq.errors import ConnectionClosedError, FlashQError, TimeoutError_

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["AsyncioConnection"]


@final
class _Waiter:
    """A future waiting for one reply (`results is None`) or for several."""

    __slots__ = ("future", "remaining", "results")

    def __init__(self, future: asyncio.Future[Any], count: int | None) -> None:
        self.future = future
        self.results: list[Reply] | None = None if count is None else [None] * count  # type: ignore[list-item]
        self.remaining = count or 1

    def deliver(self, index: int, reply: Reply) -> None:
        if self.future.done():
            return
        if self.results is None:
            self.future.set_result(reply)
            return
        self.results[index] = reply
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(self.results)


Slot = tuple[_Waiter, int]


@final
class _Protocol(asyncio.Protocol):
    def __init__(self, conn: AsyncioConnection) -> None:
        self._conn = conn

    def data_received(self, data: bytes) -> None:
        self._conn._on_data(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by the server"
        self._conn._lost(ConnectionClosedError(reason))

    def pause_writing(self) -> None:
        self._conn._writable.clear()

    def resume_writing(self) -> None:
        self._conn._writable.set()


@final
class AsyncioConnection:
    """One connection to the server under asyncio (see `_runtime.Connection`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: Session[Slot]) -> None:
        self._loop = loop
        self._session = session
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._outbox: list[bytes] = []
        self._closed = False

    @classmethod
    async def open(cls, options: ClientOptions) -> AsyncioConnection:
        """Connect (TCP, optional TLS) and send AUTH if configured.

        Raises:
            ConnectError: the server could not be reached in `connect_timeout_s`.
            AuthenticationError: the token was refused.
        """
        loop = asyncio.get_running_loop()
        conn = cls(loop, Session(binary=options.binary))
        ssl_ctx = options.ssl_context
        try:
            async with asyncio.timeout(options.connect_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: _Protocol(conn),
                    options.host,
                    options.port,
                    ssl=ssl_ctx,
                    server_hostname=options.host if ssl_ctx is not None else None,
                )
        except (OSError, TimeoutError) as exc:
            where = f"{options.host}:{options.port}"
            raise ConnectError(f"cannot connect to {where}: {exc or type(exc).__name__}") from exc
        assert isinstance(transport, asyncio.Transport)
        conn._transport = transport
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

    async def request(self, fields: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        waiter = _Waiter(self._loop.create_future(), None)
        req_id, data = self._session.request(fields, (waiter, 0))
        reply: Reply = await self._send_and_wait(waiter, data, (req_id,), timeout_s, fields)
        if isinstance(reply, FlashQError):
            raise reply
        return reply

    async def request_many(
        self, requests: list[dict[str, Any]], timeout_s: float | None
    ) -> list[Reply]:
        if not requests:
            return []
        waiter = _Waiter(self._loop.create_future(), len(requests))
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
        result: list[Reply] = await self._send_and_wait(
            waiter, b"".join(chunks), req_ids, timeout_s, requests[0]
        )
        return result

    async def _send_and_wait(
        self, waiter: _Waiter, data: bytes, req_ids: tuple[str, ...] | list[str],
        timeout_s: float | None, fields: dict[str, Any],
    ) -> Any:  # fmt: skip
        future = waiter.future
        handle = None
        if timeout_s is not None:
            cmd = fields.get("cmd")
            handle = self._loop.call_later(
                timeout_s, self._expire, future, f"no reply to {cmd} within {timeout_s:g} s"
            )
        try:
            if not self._writable.is_set():  # the kernel buffer is full: backpressure
                await self._writable.wait()
            if self._transport is None or self.closed:
                raise ConnectionClosedError("connection lost")
            if not self._outbox:
                self._loop.call_soon(self._flush)
            self._outbox.append(data)
            return await future
        finally:
            if handle is not None:
                handle.cancel()
            # Answered ids are gone already; this drops those of a cancelled or timed-out call.
            for req_id in req_ids:
                self._session.forget(req_id)

    def _flush(self) -> None:
        out, self._outbox = self._outbox, []
        if self._transport is not None and not self.closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    @staticmethod
    def _expire(future: asyncio.Future[Any], message: str) -> None:
        if not future.done():
            future.set_exception(TimeoutError_(message))

    def _on_data(self, data: bytes) -> None:
        for (waiter, index), reply in self._session.receive(data):
            waiter.deliver(index, reply)
        if self._session.closed_error is not None and self._transport is not None:
            self._transport.close()  # undecodable stream

    def _lost(self, exc: FlashQError) -> None:
        for (waiter, index), reply in self._session.connection_lost(exc):
            waiter.deliver(index, reply)
        self._writable.set()  # release writers blocked on backpressure; they see `closed`

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lost(ClientClosedError("connection closed by the client"))
        if self._transport is not None:
            self._transport.close()
        await asyncio.sleep(0)
