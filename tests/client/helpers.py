"""Running one async scenario under Trio and under asyncio, and small runtime-neutral waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import trio

from flashq.client import Worker
from flashq.client._runtime import current_runtime, detect_runtime

T = TypeVar("T")

RUNTIMES = ["trio", "asyncio"]


def run(runtime: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`main()` to completion under `runtime` (a fresh event loop each time)."""
    if runtime == "trio":
        return trio.run(main)
    return asyncio.run(main())


async def sleep(seconds: float) -> None:
    if detect_runtime() == "trio":
        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


async def gather(*aws: Awaitable[T]) -> list[T]:
    """Run the awaitables concurrently; results in order (the first error propagates)."""
    if detect_runtime() == "asyncio":
        return list(await asyncio.gather(*aws))
    results: list[Any] = [None] * len(aws)

    async def one(i: int, aw: Awaitable[T]) -> None:
        results[i] = await aw

    async with trio.open_nursery() as nursery:
        for i, aw in enumerate(aws):
            nursery.start_soon(one, i, aw)
    return results


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `predicate` (a fact about another process or thread) until it holds."""
    waited = 0.0
    while not predicate():
        if waited > timeout_s:
            raise AssertionError("condition not reached in time")
        await sleep(0.01)
        waited += 0.01


async def serve_until(worker: Worker, done: Callable[[], bool], cap_s: float = 30.0) -> None:
    """Run `worker` under the current runtime until `done()` holds, then stop it gracefully.

    `done` is checked whenever a job completes or fails, so no polling is involved.
    """
    rt = current_runtime()
    reached = rt.event()

    def check(*_: Any) -> None:
        if done():
            reached.set()

    worker.on("completed", check)
    worker.on("failed", check)
    if detect_runtime() == "trio":
        with trio.fail_after(cap_s):
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                check()
                await reached.wait()
                await worker.stop()
    else:
        async with asyncio.timeout(cap_s):
            await worker.start()
            check()
            await reached.wait()
            await worker.stop()


class Gauge:
    """How many handlers run at once, and the most that ever did (`peak`): a handler wraps
    its work in `with gauge:`. Thread-safe, for handlers run in threads too."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.running -= 1
