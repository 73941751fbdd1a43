"""Running the one async method surface synchronously.

The client methods are written once, as coroutines over `_request`. The blocking client's
`_request` does its I/O with plain sockets and never suspends, so its coroutines can be run
to completion with a single `send(None)` (`drive`), without any event loop. Sync worker
handlers run in threads; there a `Portal` carries calls back to the worker's event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["Done", "Portal", "current_portal", "drive", "portal_scope"]

T = TypeVar("T")


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end and return its value.

    Raises:
        RuntimeError: the coroutine tried to suspend (it awaited real async I/O).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a blocking-mode call tried to suspend; this is a flashq bug")


class Done(Generic[T]):
    """An already-finished awaitable: what job helpers return when they ran synchronously.

    Awaiting it gives the value; dropping it is harmless (no "never awaited" warning).
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # pragma: no cover - makes this a generator


class Portal(Protocol):
    """Runs an async function in an event loop from a thread that loop started."""

    def run(self, afn: Callable[[], Awaitable[T]]) -> T: ...


_local = threading.local()


def current_portal() -> Portal | None:
    """The portal of the worker whose sync handler runs in this thread, if any."""
    return getattr(_local, "portal", None)  # type: ignore[no-any-return]


def portal_scope(portal: Portal, fn: Callable[..., T], *args: Any) -> T:
    """Call `fn(*args)` with `portal` as this thread's portal (runs in the worker thread)."""
    _local.portal = portal
    try:
        return fn(*args)
    finally:
        _local.portal = None
