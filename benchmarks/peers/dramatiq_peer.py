"""dramatiq driver (Redis broker): `send` per job and the idiomatic worker command
(`dramatiq dramatiq_peer --processes 1 --threads 10`) in its own process.

dramatiq has neither a bulk enqueue nor an asynchronous one (`group().run()` sends one message
at a time). This module is also the worker's actor module: the broker URL comes from the
environment so both sides agree.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import dramatiq
from _common import (
    REDIS_URL_ENV,
    Stopwatch,
    Unsupported,
    external_latency,
    payload,
    record_latency,
    run_main,
    spawn_worker,
    stop_worker,
    wait_drained,
)
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"
broker = RedisBroker(url=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/5"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(job: dict[str, Any]) -> None:
    """A no-op handler."""


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def lat(sent_at: float) -> None:
    record_latency(sent_at)


def start_worker(args: argparse.Namespace) -> Any:
    argv = [
        sys.executable, "-m", "dramatiq", "dramatiq_peer", "--processes", "1",
        "--threads", str(args.concurrency), "--queues", QUEUE,
    ]  # fmt: skip
    return spawn_worker(argv, {REDIS_URL_ENV: args.url})


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if os.environ.get(REDIS_URL_ENV) != args.url:
        # The broker is built at import: re-run with the URL in the environment.
        os.environ[REDIS_URL_ENV] = args.url
        os.execv(sys.executable, [sys.executable, *sys.argv])
    broker.client.flushdb()
    try:
        scenario = args.scenario
        if scenario == "single":
            watch = Stopwatch()
            for i in range(args.jobs):
                noop.send(payload(i, args))
            return watch.result(args.jobs)
        if scenario == "pipelined":
            raise Unsupported("send is synchronous: no requests in flight")
        if scenario in ("bulk", "large_push"):
            raise Unsupported("no bulk enqueue API")
        if scenario in ("process", "large_process"):
            for i in range(args.jobs):
                noop.send(payload(i, args))
            worker = start_worker(args)
            try:
                return wait_drained(lambda: int(broker.do_qsize(QUEUE)), args.jobs)
            finally:
                stop_worker(worker)
        if scenario == "latency":
            return external_latency(args, lambda: start_worker(args), lat.send)
        raise AssertionError(scenario)
    finally:
        broker.client.flushdb()


if __name__ == "__main__":
    raise SystemExit(run_main("dramatiq", measure))
