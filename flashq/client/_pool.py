"""A fixed set of connections, reopened with backoff when one drops (runtime-neutral)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flashq.client._errors import ClientClosedError
from flashq.client._runtime import backoff_delays
from flashq.errors import AuthenticationError, TimeoutError_, UnavailableError

if TYPE_CHECKING:
    from flashq.client._runtime import Connection, Runtime
    from flashq.client.options import ClientOptions

__all__ = ["ConnectionPool"]

logger = logging.getLogger(__name__)


class ConnectionPool:
    """`pool_size` connections used round-robin; a dead one is reopened by the next call.

    Reconnection is lazy: nothing happens while the client is idle. A call that finds its
    connection dead reopens it, retrying with exponential backoff for up to
    `reconnect_timeout_s`; concurrent calls on the same slot share that one attempt.
    A call already in flight when its connection drops is not retried (it may have run):
    it fails with `ConnectionClosedError`.
    """

    def __init__(self, options: ClientOptions, runtime: Runtime) -> None:
        self._options = options
        self._runtime = runtime
        size = options.pool_size
        self._slots: list[Connection | None] = [None] * size
        self._locks: list[Any] = [runtime.lock() for _ in range(size)]
        self._next = 0
        self._closed = False

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    def idle_closed(self) -> bool:
        """Whether every opened connection has dropped (for tests and diagnostics)."""
        return all(c is None or c.closed for c in self._slots)

    async def open_all(self) -> None:
        """Open every connection now, one attempt each (fail fast on a wrong address/token)."""
        for index in range(len(self._slots)):
            await self._reopen(index, retry=False)

    async def connection(self) -> Connection:
        """A live connection, reopened first if it dropped.

        Raises:
            ClientClosedError: the pool was closed. ConnectError: the server stayed
            unreachable for `reconnect_timeout_s` (or `reconnect` is off).
            AuthenticationError: the token was refused.
        """
        index = self._next
        self._next = (index + 1) % len(self._slots)
        conn = self._slots[index]
        if conn is not None and not conn.closed:
            return conn
        return await self._reopen(index, retry=self._options.reconnect)

    async def _reopen(self, index: int, *, retry: bool) -> Connection:
        async with self._locks[index]:
            if self._closed:
                raise ClientClosedError("the client is closed")
            conn = self._slots[index]
            if conn is not None and not conn.closed:
                return conn  # another caller reopened it while we waited for the lock
            conn = await self._connect(retry=retry)
            if self._closed:  # closed while connecting
                await conn.aclose()
                raise ClientClosedError("the client is closed")
            self._slots[index] = conn
            return conn

    async def _connect(self, *, retry: bool) -> Connection:
        opts = self._options
        runtime = self._runtime
        deadline = runtime.current_time() + opts.reconnect_timeout_s
        delays = backoff_delays(opts.reconnect_delay_s, opts.reconnect_max_delay_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await runtime.open_connection(opts)
            except AuthenticationError:
                raise
            except (UnavailableError, TimeoutError_) as exc:  # ConnectError, dropped during AUTH
                remaining = deadline - runtime.current_time()
                if not retry or remaining <= 0:
                    raise
                delay = min(next(delays), remaining)
                logger.info("reconnect attempt %d failed (%s); next in %.2f s", attempt, exc, delay)
                await runtime.sleep(delay)

    async def aclose(self) -> None:
        """Close every connection; calls in flight fail with `ClientClosedError`."""
        self._closed = True
        slots, self._slots = self._slots, [None] * len(self._slots)
        for conn in slots:
            if conn is not None:
                await conn.aclose()
