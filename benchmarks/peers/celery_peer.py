"""Celery driver (Redis broker, no result backend): `delay` per job, `group` for bulk, and the
idiomatic prefork worker (`celery worker -c 10`) in its own process for processing and latency.

This module is also the worker's app module (`celery -A celery_peer worker`): the broker URL
comes from the environment so both sides agree.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import redis
from _common import (
    REDIS_URL_ENV,
    Stopwatch,
    Unsupported,
    chunks,
    external_latency,
    payload,
    record_latency,
    run_main,
    spawn_worker,
    stop_worker,
    wait_drained,
)
from celery import Celery, group

QUEUE = "celery"
app = Celery("bench", broker=os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/2"))
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(job: dict[str, Any]) -> None:
    """A no-op handler."""


@app.task(name="lat")
def lat(sent_at: float) -> None:
    record_latency(sent_at)


def push_group(args: argparse.Namespace) -> None:
    for block in chunks(args.jobs, args.batch):
        group(noop.s(payload(i, args)) for i in block).apply_async()


def start_worker(args: argparse.Namespace) -> Any:
    argv = [
        sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "-c", str(args.concurrency),
        "-P", "prefork", "-Q", QUEUE, "-l", "warning",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return spawn_worker(argv)


def remaining(r: redis.Redis) -> int:
    # Waiting messages plus those the worker prefetched and has not acked yet.
    return int(r.llen(QUEUE)) + int(r.hlen("unacked"))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    os.environ[REDIS_URL_ENV] = args.url
    app.conf.broker_url = args.url
    r = redis.Redis.from_url(args.url)
    r.flushdb()
    try:
        scenario = args.scenario
        if scenario == "single":
            watch = Stopwatch()
            for i in range(args.jobs):
                noop.delay(payload(i, args))
            return watch.result(args.jobs)
        if scenario == "pipelined":
            raise Unsupported("publishing is synchronous: no requests in flight")
        if scenario in ("bulk", "large_push"):
            watch = Stopwatch()
            push_group(args)
            return watch.result(args.jobs, note="group(): one publish per job")
        if scenario in ("process", "large_process"):
            push_group(args)
            worker = start_worker(args)
            try:
                return wait_drained(lambda: remaining(r), args.jobs)
            finally:
                stop_worker(worker)
        if scenario == "latency":
            return external_latency(args, lambda: start_worker(args), lat.delay)
        raise AssertionError(scenario)
    finally:
        r.flushdb()
        r.close()


if __name__ == "__main__":
    raise SystemExit(run_main("celery", measure))
