"""The Trio runtime: sleeping, tasks, threads, signals and connections for the SDK."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, final

import trio

from flashq.client._trio import TrioConnection

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["TrioRuntime"]

T = TypeVar("T")


@final
class _TaskGroup:
    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._nursery.start_soon(fn, *args)

    def cancel(self) -> None:
        self._nursery.cancel_scope.cancel()


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
        with trio.move_on_after(math.inf if timeout_s is None else max(0.0, timeout_s)):
            await event.wait()
        return bool(event.is_set())

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(
            fn, *args, abandon_on_cancel=True, limiter=self._limiter
        )

    def portal(self) -> _Portal:
        return _Portal(trio.lowlevel.current_trio_token())

    def thread_poster(self) -> Callable[..., None]:
        token = trio.lowlevel.current_trio_token()

        def post(fn: Callable[..., None], *args: Any) -> None:
            try:
                token.run_sync_soon(fn, *args)
            except trio.RunFinishedError:
                pass

        return post

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
