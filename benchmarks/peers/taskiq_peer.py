"""taskiq driver (taskiq-redis `RedisStreamBroker`): `kiq` (one at a time, or many in flight) and
the idiomatic worker command (`taskiq worker --workers 1 --max-async-tasks 10`) in its own
process. taskiq has no bulk enqueue API.

This module is also the worker's broker module: the broker URL comes from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import redis
from _common import (
    REDIS_URL_ENV,
    aexternal_latency,
    in_flight,
    payload,
    record_latency,
    run_main,
    spawn_worker,
    stop_worker,
    timed_push_scenario,
    wait_drained,
)
from taskiq_redis import RedisStreamBroker

STREAM = "taskiq"
GROUP = "taskiq"
broker = RedisStreamBroker(url=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/7"))


@broker.task(task_name="noop")
async def noop(job: dict[str, Any]) -> None:
    """A no-op handler."""


@broker.task(task_name="lat")
async def lat(sent_at: float) -> None:
    record_latency(sent_at)


def start_worker(args: argparse.Namespace) -> Any:
    argv = [
        sys.executable, "-m", "taskiq", "worker", "taskiq_peer:broker", "--workers", "1",
        "--max-async-tasks", str(args.concurrency), "--log-level", "WARNING",
    ]  # fmt: skip
    return spawn_worker(argv, {REDIS_URL_ENV: args.url})


def remaining(r: redis.Redis) -> int:
    # Entries the group has not read yet (lag) plus read and not acknowledged (pending).
    for group in r.xinfo_groups(STREAM):
        if group["name"] in (GROUP, GROUP.encode()):
            return int(group["lag"] or 0) + int(group["pending"])
    return 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    await broker.startup()  # creates the consumer group, so jobs pushed now are delivered

    async def push(i: int) -> None:
        await noop.kiq(payload(i, args))

    scenario = args.scenario
    try:
        timed = await timed_push_scenario(args, push)
        if timed is not None:
            return timed
        if scenario in ("process", "large_process"):
            # Untimed preload: fewer in flight, as 1,000 concurrent kiq() on a busy machine
            # once failed with SendTaskError.
            await in_flight(args.jobs, 100, push)
            worker = start_worker(args)
            r = redis.Redis.from_url(args.url)
            try:
                return await asyncio.to_thread(wait_drained, lambda: remaining(r), args.jobs)
            finally:
                stop_worker(worker)
                r.close()
        if scenario == "latency":
            return await aexternal_latency(args, lambda: start_worker(args), lat.kiq)
        raise AssertionError(scenario)
    finally:
        await broker.shutdown()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if os.environ.get(REDIS_URL_ENV) != args.url:
        # The broker is built at import: re-run with the URL in the environment.
        os.environ[REDIS_URL_ENV] = args.url
        os.execv(sys.executable, [sys.executable, *sys.argv])
    r = redis.Redis.from_url(args.url)
    r.flushdb()
    try:
        return asyncio.run(run(args))
    finally:
        r.flushdb()
        r.close()


if __name__ == "__main__":
    raise SystemExit(run_main("taskiq", measure))
