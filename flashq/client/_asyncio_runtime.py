"""The asyncio runtime: sleeping, tasks, threads, signals and connections for the SDK."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar, final

from flashq.client._asyncio import AsyncioConnection

if TYPE_CHECKING:
    from flashq.client.options import ClientOptions

__all__ = ["AsyncioRuntime"]

T = TypeVar("T")


@final
class _TaskGroup:
    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cancelled = False

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        task: asyncio.Task[Any] = self._group.create_task(fn(*args))  # type: ignore[arg-type]
        if self._cancelled:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        self._cancelled = True
        for task in list(self._tasks):
            task.cancel()


@final
class _Portal:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, afn: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await afn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()


@final
class AsyncioRuntime:
    """`_runtime.Runtime` for asyncio; `thread_limit` sizes the executor of `run_in_thread`."""

    name: Literal["asyncio"] = "asyncio"

    def __init__(self, thread_limit: int | None = None) -> None:
        self._thread_limit = thread_limit
        self._executor: ThreadPoolExecutor | None = None

    async def open_connection(self, options: ClientOptions) -> AsyncioConnection:
        return await AsyncioConnection.open(options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def current_time(self) -> float:
        return asyncio.get_running_loop().time()

    def lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def event(self) -> asyncio.Event:
        return asyncio.Event()

    @asynccontextmanager
    async def open_task_group(self) -> AsyncIterator[_TaskGroup]:
        async with asyncio.TaskGroup() as group:
            yield _TaskGroup(group)

    async def wait_event(self, event: Any, timeout_s: float | None) -> bool:
        try:
            await asyncio.wait_for(event.wait(), None if timeout_s is None else max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None and self._thread_limit:
            self._executor = ThreadPoolExecutor(self._thread_limit, thread_name_prefix="flashq")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def portal(self) -> _Portal:
        return _Portal(asyncio.get_running_loop())

    def thread_poster(self) -> Callable[..., None]:
        loop = asyncio.get_running_loop()

        def post(fn: Callable[..., None], *args: Any) -> None:
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop is closed
                pass

        return post

    @asynccontextmanager
    async def watch_signals(self, callback: Callable[[int], None]) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, callback, int(sig))
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):  # not on this platform / loop
                    pass
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def shutdown(self) -> None:
        """Release the executor; threads still running finish in the background."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
