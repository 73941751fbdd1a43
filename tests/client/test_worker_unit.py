"""The worker's logic on Trio's virtual clock, against the in-memory `MemoryApi`."""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing

from flashq.client import Job, Retry, Worker
from tests.client.helpers import Gauge, serve_until
from tests.client.memory_api import MemoryApi


async def test_concurrency_limit_is_respected_and_every_job_completes(autojump_clock):
    api = MemoryApi()
    for i in range(10):
        api.add(i)
    gauge = Gauge()

    async def handler(job: Job) -> None:
        with gauge:
            await trio.sleep(1)

    worker = Worker("q", handler, client=api, concurrency=3)
    await serve_until(worker, lambda: len(api.completed) == 10)
    # 10 one-second jobs, 3 at a time: never more than 3 at once, 4 rounds, although the
    # first PULLB asked for 3 + the default prefetch (4 x 3) and took all 10.
    assert gauge.peak == 3
    assert worker.processed == 10
    assert api.sent("PULLB")[0]["count"] == 15


async def test_batch_paths_pullb_ackb_for_none_and_ack_for_results(autojump_clock):
    api = MemoryApi()
    for i in range(50):
        api.add(i)

    async def handler(job: Job) -> Any:
        return None if job.data % 2 else {"double": job.data * 2}

    worker = Worker("q", handler, client=api, concurrency=100, batch_size=100)
    await serve_until(worker, lambda: len(api.completed) == 50)
    assert not api.sent("PULL")
    acked = [f["id"] for f in api.sent("ACK")]
    batched = [i for f in api.sent("ACKB") for i in f["ids"]]
    assert sorted(acked) == list(range(1, 51, 2))  # data even -> result -> ACK
    assert sorted(batched) == list(range(2, 51, 2))  # data odd -> None -> ACKB
    assert len(api.sent("ACKB")) < 25  # batched, not one per job
    assert api.completed[3] == {"double": 4}


async def test_failing_handler_is_retried_then_dead_lettered(autojump_clock):
    api = MemoryApi()
    api.add("x", max_attempts=3)
    failures: list[tuple[int, str]] = []
    worker = Worker("q", _boom, client=api)
    worker.on("failed", lambda job, exc: failures.append((job.id, str(exc))))
    await serve_until(worker, lambda: len(api.dlq) == 1)
    assert [f["error"] for f in api.sent("FAIL")] == ["boom"] * 3
    assert failures == [(1, "boom")] * 3
    assert worker.failed == 3
    assert worker.processed == 0


async def _boom(job: Job) -> None:
    raise ValueError("boom")


async def test_retry_with_a_delay_moves_to_delayed_and_without_fails(autojump_clock):
    api = MemoryApi()
    api.add("later")
    api.add("backoff")
    seen: dict[int, int] = {}

    async def handler(job: Job) -> None:
        seen[job.id] = seen.get(job.id, 0) + 1
        if seen[job.id] == 1:
            raise Retry(2.5) if job.data == "later" else Retry()

    worker = Worker("q", handler, client=api)
    await serve_until(worker, lambda: len(api.completed) == 2)
    assert api.sent("MOVETODELAYED") == [{"cmd": "MOVETODELAYED", "id": 1, "delay": 2500}]
    assert api.sent("FAIL") == [{"cmd": "FAIL", "id": 2, "error": "retry requested"}]


async def test_long_jobs_send_heartbeats_every_third_of_their_stall_window(autojump_clock):
    api = MemoryApi()
    api.add("long", stall_timeout=3000)

    async def handler(job: Job) -> None:
        await trio.sleep(3.5)

    worker = Worker("q", handler, client=api)
    await serve_until(worker, lambda: len(api.completed) == 1)
    beats = [t for t, f in api.calls if f["cmd"] == "HEARTBEAT"]
    # A 3 s stall window -> a beat every second of the 3.5 s run.
    assert len(beats) == 3
    assert all(b2 - b1 >= 0.99 for b1, b2 in itertools.pairwise(beats))


async def test_graceful_stop_finishes_jobs_in_flight_and_pulls_no_more(autojump_clock):
    api = MemoryApi()
    for i in range(3):
        api.add(i)

    async def handler(job: Job) -> None:
        await trio.sleep(5)

    worker = Worker("q", handler, client=api, concurrency=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await trio.sleep(1)
        stopped_at = trio.current_time()
        for i in range(3):
            api.add(i)  # arrive after the stop: must stay in the queue
        await worker.stop()
    # The three jobs in flight ran to their end (t = 5 s), the late ones were not taken.
    assert sorted(api.completed) == [1, 2, 3]
    assert len(api.waiting) == 3
    assert trio.current_time() >= 5
    pulls_after_stop = [t for t, f in api.calls if f["cmd"] == "PULLB" and t > stopped_at]
    assert pulls_after_stop == []
    assert worker.state == "stopped"


async def test_shutdown_deadline_cancels_and_hands_jobs_back(autojump_clock):
    api = MemoryApi()
    api.add("stuck")

    async def handler(job: Job) -> None:
        await trio.sleep(1000)

    worker = Worker("q", handler, client=api, shutdown_timeout_s=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await trio.sleep(1)
        await worker.stop()
    assert trio.current_time() < 10  # the deadline (2 s), not the job's 1000 s
    assert api.sent("MOVETODELAYED") == [{"cmd": "MOVETODELAYED", "id": 1, "delay": 0}]
    assert [j["id"] for j in api.waiting] == [1]


async def test_sync_handler_runs_in_a_thread_with_blocking_job_helpers():
    # Real clock: virtual time would race ahead while the thread runs.
    import threading

    api = MemoryApi()
    api.add(7)
    loop_thread = threading.current_thread()
    progress: list[tuple[int, int]] = []

    def handler(job: Job) -> int:
        assert threading.current_thread() is not loop_thread
        job.update_progress(60, "most")  # no await: completes before returning
        job.log("done soon")
        return int(job.data) * 6

    worker = Worker("q", handler, client=api, pull_timeout_ms=50)
    worker.on("progress", lambda job, p: progress.append((job.id, p)))
    await serve_until(worker, lambda: len(api.completed) == 1)
    assert api.completed[1] == 42
    assert progress == [(1, 60)]
    assert api.sent("LOG") == [{"cmd": "LOG", "id": 1, "message": "done soon", "level": "info"}]


async def test_pull_errors_are_reported_and_the_worker_carries_on(autojump_clock):
    api = MemoryApi()
    api.fail_next_pulls = 3
    api.add("survivor")
    errors: list[BaseException] = []
    done: list[Any] = []
    worker = Worker("q", _echo, client=api)
    worker.on("error", errors.append)

    @worker.on("completed")
    async def on_completed(job: Job, result: Any) -> None:
        done.append(result)

    await serve_until(worker, lambda: len(api.completed) == 1)
    assert len(errors) == 3
    assert done == ["survivor"]


async def _echo(job: Job) -> Any:
    return job.data


async def test_several_queues_share_the_concurrency_limit(autojump_clock):
    api = MemoryApi()
    for i in range(6):
        api.add(i, queue="a" if i % 2 else "b")
    gauge = Gauge()

    async def handler(job: Job) -> None:
        with gauge:
            await trio.sleep(1)

    worker = Worker(["a", "b"], handler, client=api, concurrency=2)
    await serve_until(worker, lambda: len(api.completed) == 6)
    assert gauge.peak == 2
    assert {f["queue"] for f in api.sent("PULLB")} == {"a", "b"}
