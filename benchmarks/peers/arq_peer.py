"""arq driver: `enqueue_job` (one at a time, or many in flight) and arq's `Worker` in this process
with `max_jobs=10`.

arq has no bulk API. Its default `poll_delay=0.5` caps a drained queue at ~200 jobs/s, so the
worker polls every 10 ms (`poll_delay=0.01`), the setting a user chasing throughput would pick.
"""

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
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func

POLL_DELAY_S = 0.01


async def noop(ctx: dict[str, Any], job: dict[str, Any]) -> None:
    """A no-op handler."""


def make_worker(redis: ArqRedis, args: argparse.Namespace, **kwargs: Any) -> Worker:
    return Worker(
        functions=[noop, *kwargs.pop("functions", [])],
        redis_pool=redis,
        queue_name=args.queue,
        max_jobs=args.concurrency,
        poll_delay=POLL_DELAY_S,
        handle_signals=False,
        **kwargs,
    )


async def stop(worker: Worker, task: asyncio.Task[Any]) -> None:
    # close() cancels jobs still finishing, and then gathers them: their CancelledError is ours.
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()
    task.cancel()


async def drain(redis: ArqRedis, args: argparse.Namespace) -> dict[str, Any]:
    clock = DrainClock(args.jobs)
    done = asyncio.Event()

    async def on_end(ctx: dict[str, Any]) -> None:
        # after_job_end: the job has ended and its result is recorded.
        if clock.tick():
            done.set()

    worker = make_worker(redis, args, after_job_end=on_end)
    task = asyncio.create_task(worker.main())
    await done.wait()
    await stop(worker, task)
    return clock.result()


async def latency(redis: ArqRedis, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[float] = []
    all_in = asyncio.Event()

    async def lat(ctx: dict[str, Any], sent_at: float) -> None:
        samples.append(time.time() - sent_at)
        if len(samples) >= args.jobs:
            all_in.set()

    worker = make_worker(redis, args, functions=[func(lat, name="lat")])
    task = asyncio.create_task(worker.main())
    await asyncio.sleep(0.2)
    begin = time.perf_counter()
    for _, due in paced(args.jobs, args.rate):
        await asleep_until(due)
        await redis.enqueue_job("lat", time.time(), _queue_name=args.queue)
    seconds = time.perf_counter() - begin
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), 30)
    await stop(worker, task)
    return latency_result(samples, args.jobs, seconds)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    redis = await create_pool(RedisSettings.from_dsn(args.url))
    await redis.flushdb()

    async def push(i: int) -> None:
        await redis.enqueue_job("noop", payload(i, args), _queue_name=args.queue)

    try:
        scenario = args.scenario
        timed = await timed_push_scenario(args, push)
        if timed is not None:
            return timed
        if scenario in ("process", "large_process"):
            await in_flight(args.jobs, args.window, push)
            return await drain(redis, args)
        if scenario == "latency":
            return await latency(redis, args)
        raise AssertionError(scenario)
    finally:
        await redis.flushdb()
        await redis.aclose()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(run_main("arq", measure))
