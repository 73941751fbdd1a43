"""The runtime seam: what the client and the worker need from Trio or asyncio.

`flashq.client` offers one async API under both event loops. Everything that differs
(sockets, waiting for a reply, sleeping, tasks, threads, signals) sits behind the two
protocols below, implemented in `_trio*.py` and `_asyncio*.py`; the implementation is picked
when a client connects, from the event loop that is running then.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from flashq.client._session import Reply

if TYPE_CHECKING:
    from flashq.client._sync import Portal
    from flashq.client.options import ClientOptions

__all__ = [
    "Connection",
    "Event",
    "Runtime",
    "TaskGroup",
    "backoff_delays",
    "current_runtime",
    "detect_runtime",
]

T = TypeVar("T")
RuntimeName = Literal["trio", "asyncio"]


class Connection(Protocol):
    """One open, authenticated, pipelined connection (see `_session.Session`)."""

    @property
    def closed(self) -> bool: ...

    async def request(self, fields: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        """Send one command and wait for its reply; raise the error it maps to.

        A timeout raises `TimeoutError_`; a connection lost meanwhile `ConnectionClosedError`.
        """
        ...

    async def request_many(
        self, requests: list[dict[str, Any]], timeout_s: float | None
    ) -> list[Reply]:
        """Send several commands in one write and wait for all replies (errors not raised)."""
        ...

    async def aclose(self) -> None:
        """Close; requests still in flight fail with `ClientClosedError`."""
        ...


class Event(Protocol):
    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> Any: ...


class TaskGroup(Protocol):
    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...
    def cancel(self) -> None:
        """Cancel every task started in the group.

        Under Trio the rest of the `async with` body is cancelled too (it is a nursery),
        under asyncio it is not: call it as the last statement of the body.
        """
        ...


class Runtime(Protocol):
    @property
    def name(self) -> RuntimeName: ...

    async def open_connection(self, options: ClientOptions) -> Connection: ...
    async def sleep(self, seconds: float) -> None: ...
    def current_time(self) -> float: ...
    def lock(self) -> AbstractAsyncContextManager[Any]: ...
    def event(self) -> Event: ...
    def open_task_group(self) -> AbstractAsyncContextManager[TaskGroup]: ...
    async def wait_event(self, event: Event, timeout_s: float | None) -> bool:
        """Wait for `event` at most `timeout_s` seconds; True if it was set."""
        ...

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking `fn(*args)` in a worker thread; a cancelled caller abandons it."""
        ...

    def portal(self) -> Portal:
        """A portal into this event loop, for threads it started."""
        ...

    def thread_poster(self) -> Callable[..., None]:
        """A function threads call as `post(fn, *args)` to run `fn(*args)` in this event loop
        soon; it never blocks, and once the loop has ended the call is dropped. `fn` must
        not raise. Call this method from the event loop."""
        ...

    def watch_signals(self, callback: Callable[[int], None]) -> AbstractAsyncContextManager[None]:
        """Call `callback(signum)` on SIGINT / SIGTERM while the context is open."""
        ...

    def shutdown(self) -> None:
        """Release what `run_in_thread` holds (threads still running are abandoned)."""
        ...


def detect_runtime() -> RuntimeName:
    """Which event loop runs the current task: "trio" or "asyncio".

    Raises:
        RuntimeError: called outside of a running event loop.
    """
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_task():
        return "trio"
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return "asyncio"
    raise RuntimeError("flashq's async API needs a running Trio or asyncio event loop")


def current_runtime(thread_limit: int | None = None) -> Runtime:
    """The runtime implementation for the event loop running the current task.

    `thread_limit` caps how many `run_in_thread` calls run at once (None: the runtime's
    default).
    """
    if detect_runtime() == "trio":
        from flashq.client._trio_runtime import TrioRuntime

        return TrioRuntime(thread_limit)
    from flashq.client._asyncio_runtime import AsyncioRuntime

    return AsyncioRuntime(thread_limit)


def backoff_delays(
    first_s: float, max_s: float, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential backoff with full jitter in the upper half: first_s, ~2x, ~4x ... max_s.

    Jitter keeps many clients that lost the same server from reconnecting in lockstep.
    """
    rand = (rng or random.Random()).random
    step = first_s
    while True:
        yield step * (0.5 + rand() / 2)
        step = min(max_s, step * 2)
