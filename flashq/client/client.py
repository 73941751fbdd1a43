"""`FlashQ`: the async client, one API under Trio and asyncio."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Unpack, final

from flashq.client._api import Api
from flashq.client._errors import ClientClosedError
from flashq.client._pool import ConnectionPool
from flashq.client._runtime import RuntimeName, current_runtime
from flashq.client._session import Reply
from flashq.client.options import ClientOptions, ClientOpts
from flashq.client.pipeline import Pipeline

__all__ = ["AsyncClient", "Client", "FlashQ"]


@final
class FlashQ(Api):
    """Async flashQ client: every command of the protocol as a method.

    Works under Trio and under asyncio alike: the event loop running when the client first
    connects is the one it uses from then on (a client belongs to one event loop).
    Calls made concurrently are pipelined on one connection, so the way to go fast is
    to issue many calls at once (tasks, `gather`, a nursery) or use the batch methods.

    Args:
        options: a `ClientOptions`, or a dict of its fields or of upstream SDK option names.
        **kwargs: `ClientOptions` fields applied on top (`host=`, `port=`, `token=` ...).

    Connection is lazy: the first call connects, or call `connect()` (or use
    `async with`) to fail fast. A dropped connection is reopened by the next call, with
    backoff; a call in flight when it drops raises `ConnectionClosedError` (it may or may
    not have run). After `close()` every call raises `ClientClosedError`.
    """

    def __init__(
        self,
        options: ClientOptions | Mapping[str, Any] | None = None,
        /,
        **kwargs: Unpack[ClientOpts],
    ) -> None:
        self.options = ClientOptions.coerce(options, **kwargs)
        self._pool: ConnectionPool | None = None
        self._closed = False

    @property
    def runtime(self) -> RuntimeName | None:
        """ "trio" or "asyncio" once connected, else None."""
        return None if self._pool is None else self._pool.runtime.name

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_pool(self) -> ConnectionPool:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._pool is None:
            self._pool = ConnectionPool(self.options, current_runtime())
        return self._pool

    def pipeline(self) -> Pipeline:
        """Calls to batch into one write: `await pipe.execute(pipe.push(q, d) for d in items)`."""
        return Pipeline(self)

    async def connect(self) -> None:
        """Open the connections now (one attempt each) and authenticate.

        Raises:
            ConnectError: the server is unreachable. AuthenticationError: bad token.
        """
        await self._ensure_pool().open_all()

    async def close(self) -> None:
        """Close the connections; calls still in flight fail with `ClientClosedError`."""
        self._closed = True
        if self._pool is not None:
            await self._pool.aclose()

    async def __aenter__(self) -> FlashQ:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.close()

    def _timeout(self, wait_ms: int | None) -> float | None:
        base = self.options.request_timeout_s
        if base is None:
            return None
        return base + wait_ms / 1000 if wait_ms else base

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        conn = await (self._pool or self._ensure_pool()).connection()
        return await conn.request(fields, self._timeout(wait_ms))

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        conn = await (self._pool or self._ensure_pool()).connection()
        return await conn.request_many(requests, self._timeout(wait_ms))


AsyncClient = FlashQ
Client = FlashQ
