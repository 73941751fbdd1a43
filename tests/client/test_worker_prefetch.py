"""Prefetch against a real server: how many jobs a worker holds, how many run, what a stop
hands back, and that a drain with the defaults handles every job once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import trio

from flashq.client import FlashQ, Job, JobState, Worker
from tests.client.helpers import RUNTIMES, Gauge, run, serve_until, wait_until
from tests.harness import ServerProcess


class Gate:
    """Handlers that block until `open()`, counting how many run at once.

    `kind` "async": an async handler waiting on a Trio event; "thread": a sync handler (run
    in the worker's threads) waiting on a threading event.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started: list[int] = []  # list.append is atomic: safe from the threads
        self.gauge = Gauge()
        self._trio_gate = trio.Event()
        self._thread_gate = threading.Event()

    async def _async_handler(self, job: Job) -> str:
        with self.gauge:
            self.started.append(job.id)
            await self._trio_gate.wait()
        return "done"

    def _sync_handler(self, job: Job) -> str:
        with self.gauge:
            self.started.append(job.id)
            self._thread_gate.wait(30)
        return "done"

    @property
    def handler(self) -> Any:
        return self._async_handler if self.kind == "async" else self._sync_handler

    def open(self) -> None:
        self._trio_gate.set()
        self._thread_gate.set()


async def _held_on_server(client: FlashQ, queue: str, active: int) -> None:
    """Wait until the server counts `active` jobs of `queue` as active."""
    counts = await client.get_job_counts(queue)
    while counts.active != active:
        await trio.sleep(0.01)
        counts = await client.get_job_counts(queue)


@pytest.mark.parametrize(("prefetch", "held"), [(0, 2), (5, 7)])
async def test_a_busy_worker_holds_concurrency_plus_prefetch_jobs(
    shared_server: ServerProcess, prefetch: int, held: int
):
    queue = f"wk-prefetch-hold-{prefetch}"
    gate = Gate("async")
    async with FlashQ(port=shared_server.port) as client:
        ids = await client.push_batch(queue, list(range(10)))
        worker = Worker(queue, gate.handler, client=client, concurrency=2, prefetch=prefetch)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                await _held_on_server(client, queue, held)
                await wait_until(lambda: len(gate.started) == 2)
                # Every handler is blocked, so nothing frees room for another pull: what the
                # worker holds now it keeps. The counts go through the worker's own
                # connection, behind any pull it has sent.
                counts = await client.get_job_counts(queue)
                assert (counts.active, counts.waiting) == (held, 10 - held)
                assert worker.processing == held
                assert len(gate.started) == 2  # prefetched jobs wait for a slot
                gate.open()
                await wait_until(lambda: worker.processed == 10)
                await worker.stop()
        assert gate.gauge.peak == 2
        assert sorted(gate.started) == sorted(ids)
        assert {await client.get_state(i) for i in ids} == {JobState.COMPLETED}


@pytest.mark.parametrize("kind", ["async", "thread"])
async def test_a_graceful_stop_hands_prefetched_jobs_back_at_once(
    shared_server: ServerProcess, kind: str
):
    queue = f"wk-prefetch-stop-{kind}"
    gate = Gate(kind)
    async with FlashQ(port=shared_server.port) as client:
        ids = await client.push_batch(queue, list(range(10)))
        worker = Worker(queue, gate.handler, client=client, concurrency=2, prefetch=5)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                await _held_on_server(client, queue, 7)
                await wait_until(lambda: len(gate.started) == 2)
                nursery.start_soon(worker.stop)
                # The five prefetched jobs go back while the two running ones still run.
                await _held_on_server(client, queue, 2)
                assert (await client.get_job_counts(queue)).waiting == 8
                assert worker.state == "stopping"
                gate.open()
        assert worker.processing == 0  # the stop waited for the running two
        started = set(gate.started)
        assert len(started) == 2
        assert [await client.get_result(i) for i in started] == ["done", "done"]
        for job_id in set(ids) - started:
            job = await client.get_job(job_id)
            assert job is not None
            assert (job.state, job.attempts) == (JobState.WAITING, 0)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_drain_with_the_defaults_handles_every_job_once(
    shared_server: ServerProcess, runtime: str, kind: str
):
    queue = f"wk-prefetch-drain-{runtime}-{kind}"
    total = 2000
    handled: list[int] = []  # list.append is atomic: sync handlers run in threads

    def sync_handler(job: Job) -> None:
        handled.append(job.id)

    async def async_handler(job: Job) -> None:
        handled.append(job.id)

    async def main() -> None:
        async with FlashQ(port=shared_server.port) as client:
            ids = await client.push_batch(queue, list(range(total)))
            handler = async_handler if kind == "async" else sync_handler
            worker = Worker(queue, handler, client=client, pull_timeout_ms=200)
            await serve_until(worker, lambda: worker.processed == total)
            counts = await client.get_job_counts(queue)
            assert (counts.waiting, counts.active, counts.delayed) == (0, 0, 0)
            assert counts.completed == total
            assert sorted(handled) == sorted(ids)

    run(runtime, main)
    assert [i for i, n in Counter(handled).items() if n > 1] == []
