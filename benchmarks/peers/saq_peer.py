"""saq driver: `Queue.enqueue` (one at a time, or many in flight) and saq's `Worker` in this
process with `concurrency=10`. saq has no bulk enqueue API (`map` waits for results)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from _common import (
    DrainClock,
    asleep_until,
    in_flight,
    latency_result,
    paced,
    payload,
    run_main,
    timed_push_scenario,
)
from saq import Queue, Worker


async def noop(ctx: dict[str, Any], *, job: dict[str, Any]) -> None:
    """A no-op handler."""


async def drain(queue: Queue, args: argparse.Namespace) -> dict[str, Any]:
    clock = DrainClock(args.jobs)
    done = asyncio.Event()

    async def after(ctx: dict[str, Any]) -> None:
        # after_process: the job's outcome is written.
        if clock.tick():
            done.set()

    worker = Worker(queue, functions=[noop], concurrency=args.concurrency, after_process=after)
    task = asyncio.create_task(worker.start())
    await done.wait()
    await worker.stop()
    task.cancel()
    return clock.result()


async def latency(queue: Queue, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[float] = []
    all_in = asyncio.Event()

    async def lat(ctx: dict[str, Any], *, sent_at: float) -> None:
        samples.append(time.time() - sent_at)
        if len(samples) >= args.jobs:
            all_in.set()

    worker = Worker(queue, functions=[("lat", lat)], concurrency=args.concurrency)
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(0.2)
    begin = time.perf_counter()
    for _, due in paced(args.jobs, args.rate):
        await asleep_until(due)
        await queue.enqueue("lat", sent_at=time.time())
    seconds = time.perf_counter() - begin
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), 30)
    await worker.stop()
    task.cancel()
    return latency_result(samples, args.jobs, seconds)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    queue = Queue.from_url(args.url, name=args.queue)
    await queue.connect()
    await queue.redis.flushdb()  # type: ignore[attr-defined]

    async def push(i: int) -> None:
        await queue.enqueue("noop", job=payload(i, args))

    try:
        scenario = args.scenario
        timed = await timed_push_scenario(args, push)
        if timed is not None:
            return timed
        if scenario in ("process", "large_process"):
            await in_flight(args.jobs, args.window, push)
            return await drain(queue, args)
        if scenario == "latency":
            return await latency(queue, args)
        raise AssertionError(scenario)
    finally:
        await queue.redis.flushdb()  # type: ignore[attr-defined]
        await queue.disconnect()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(run_main("saq", measure))
