"""Ceiling row: raw Redis lists from one Python process (redis-py + hiredis).

What any Redis-backed queue could at best do from Python on this machine: LPUSH to enqueue
(one by one, pipelined, or 1,000 values per command), RPOP with a count to dequeue in
batches, BRPOP to wait. No job records, no states, no acks: a floor for peers' overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import redis
import redis.asyncio as aredis
from _common import (
    Stopwatch,
    asleep_until,
    chunks,
    latency_result,
    paced,
    payload,
    run_main,
)

POP_BATCH = 100


def encoded(i: int, args: argparse.Namespace) -> str:
    return json.dumps(payload(i, args))


def preload(r: redis.Redis, key: str, args: argparse.Namespace) -> None:
    for block in chunks(args.jobs, args.batch):
        r.lpush(key, *(encoded(i, args) for i in block))


def noop(job: Any) -> None:
    """The handler: does nothing with the decoded job."""


def drain(r: redis.Redis, key: str, total: int) -> dict[str, Any]:
    watch = Stopwatch()
    done = 0
    while done < total:
        items = r.rpop(key, POP_BATCH)
        for item in items or ():
            noop(json.loads(item))
        done += len(items or ())
    return watch.result(done)


async def latency(args: argparse.Namespace, key: str) -> dict[str, Any]:
    producer = aredis.Redis.from_url(args.url)
    consumer = aredis.Redis.from_url(args.url)
    samples: list[float] = []

    async def consume() -> None:
        while len(samples) < args.jobs:
            got = await consumer.brpop([key], timeout=5)
            if got is None:
                return
            samples.append(time.time() - json.loads(got[1])["t"])

    task = asyncio.create_task(consume())
    start = time.perf_counter()
    for i, due in paced(args.jobs, args.rate):
        await asleep_until(due)
        await producer.lpush(key, json.dumps({"i": i, "t": time.time()}))
    seconds = time.perf_counter() - start
    await asyncio.wait_for(task, 30)
    await producer.aclose()
    await consumer.aclose()
    return latency_result(samples, args.jobs, seconds)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    r = redis.Redis.from_url(args.url)
    r.flushdb()
    key = f"bench:{args.queue}"
    scenario = args.scenario
    try:
        if scenario == "single":
            watch = Stopwatch()
            for i in range(args.jobs):
                r.lpush(key, encoded(i, args))
            return watch.result(args.jobs)
        if scenario == "pipelined":
            watch = Stopwatch()
            for block in chunks(args.jobs, args.window):
                pipe = r.pipeline(transaction=False)
                for i in block:
                    pipe.lpush(key, encoded(i, args))
                pipe.execute()
            return watch.result(args.jobs)
        if scenario in ("bulk", "large_push"):
            watch = Stopwatch()
            preload(r, key, args)
            return watch.result(args.jobs)
        if scenario in ("process", "large_process"):
            preload(r, key, args)
            return drain(r, key, args.jobs)
        if scenario == "latency":
            return asyncio.run(latency(args, key))
        raise AssertionError(scenario)
    finally:
        r.flushdb()
        r.close()


if __name__ == "__main__":
    raise SystemExit(run_main("redis", measure))
