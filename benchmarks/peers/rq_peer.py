"""RQ driver: `enqueue` per job, `enqueue_many` (one pipeline) for bulk, and `rq worker-pool -n 10`
in its own processes for processing and latency.

The pool runs `SimpleWorker`s: RQ's default `Worker` forks a process per job (~100 jobs/s here),
which would measure fork(), not the queue. Jobs name their function by import path
(`rq_peer.noop`), so the worker imports this module.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis
from _common import (
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
from rq import Queue


def noop(job: dict[str, Any]) -> None:
    """A no-op handler."""


def lat(sent_at: float) -> None:
    record_latency(sent_at)


def enqueue_bulk(q: Queue, args: argparse.Namespace) -> None:
    for block in chunks(args.jobs, args.batch):
        q.enqueue_many([Queue.prepare_data("rq_peer.noop", (payload(i, args),)) for i in block])


def start_worker(args: argparse.Namespace) -> Any:
    argv = [
        sys.executable, "-m", "rq.cli", "worker-pool", "-n", str(args.concurrency),
        "-w", "rq.worker.SimpleWorker", "-u", args.url, args.queue,
    ]  # fmt: skip
    return spawn_worker(argv)


def remaining(r: redis.Redis, queue: str) -> int:
    # Waiting job ids plus jobs a worker has started and not finished (the wip registry).
    pipe = r.pipeline(transaction=False)
    pipe.llen(f"rq:queue:{queue}")
    pipe.zcard(f"rq:wip:{queue}")
    waiting, started = pipe.execute()
    return int(waiting) + int(started)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    r = redis.Redis.from_url(args.url)
    r.flushdb()
    q = Queue(args.queue, connection=r)
    try:
        scenario = args.scenario
        if scenario == "single":
            watch = Stopwatch()
            for i in range(args.jobs):
                q.enqueue("rq_peer.noop", payload(i, args))
            return watch.result(args.jobs)
        if scenario == "pipelined":
            raise Unsupported("enqueue is synchronous; its pipelined form is enqueue_many (bulk)")
        if scenario in ("bulk", "large_push"):
            watch = Stopwatch()
            enqueue_bulk(q, args)
            return watch.result(args.jobs)
        if scenario in ("process", "large_process"):
            enqueue_bulk(q, args)
            worker = start_worker(args)
            try:
                return wait_drained(lambda: remaining(r, args.queue), args.jobs)
            finally:
                stop_worker(worker)
        if scenario == "latency":
            return external_latency(
                args, lambda: start_worker(args), lambda t: q.enqueue("rq_peer.lat", t)
            )
        raise AssertionError(scenario)
    finally:
        r.flushdb()
        r.close()


if __name__ == "__main__":
    raise SystemExit(run_main("rq", measure))
