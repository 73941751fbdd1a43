"""The worker's fast path, on Trio's virtual clock against `MemoryApi` unless said otherwise:
slots freed before the ack is answered, the held-jobs bound, slot wake-ups, sharing slots
between queues, sync handlers keeping their thread, and the cheap wire-Job path."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from flashq.client import Job, JobState, Worker
from flashq.client._session import Reply
from flashq.errors import ValidationError
from tests.client.helpers import Gauge, serve_until
from tests.client.memory_api import MemoryApi
from tests.client.test_models import WIRE_JOB


class SlowAckApi(MemoryApi):
    """ACK and ACKB are answered only `ack_delay_s` after they arrive."""

    def __init__(self, ack_delay_s: float) -> None:
        super().__init__()
        self.ack_delay_s = ack_delay_s

    async def _cmd_ackb(self, f: dict[str, Any]) -> dict[str, Any]:
        await trio.sleep(self.ack_delay_s)
        return await super()._cmd_ackb(f)


async def test_a_slot_frees_when_its_handler_returns_within_the_held_jobs_bound(autojump_clock):
    api = SlowAckApi(ack_delay_s=5)
    for i in range(6):
        api.add(i)
    handled: list[tuple[float, int]] = []

    async def handler(job: Job) -> None:
        handled.append((trio.current_time(), job.id))

    worker = Worker("q", handler, client=api, concurrency=2, prefetch=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        await trio.sleep(4.9)
        # Given acks that take 5 s, when handlers return at once: their slots are free
        # before the ack is answered, so a second pull goes out at t=0, up to the bound
        # of 2 x concurrency jobs held (no prefetch), and nothing counts as processed yet.
        assert [i for _, i in handled] == [1, 2, 3, 4]
        assert all(t == 0 for t, _ in handled)
        assert worker.processing == 4
        assert worker.processed == 0
        # The first ACKB answer (t=5) frees room for the last two jobs.
        await trio.sleep(0.2)
        assert [i for _, i in handled] == [1, 2, 3, 4, 5, 6]
        await worker.stop()
    # A graceful stop waits for every outcome to be answered.
    assert sorted(api.completed) == [1, 2, 3, 4, 5, 6]
    assert worker.processed == 6
    assert worker.processing == 0


async def test_small_pulls_wait_for_the_acks_out_but_never_idle_a_slot_long(autojump_clock):
    api = SlowAckApi(ack_delay_s=0.01)
    durations = [0.05 + (i % 10) * 0.003 for i in range(100)]
    for d in durations:
        api.add(d)
    ended: list[float] = []

    async def handler(job: Job) -> None:
        await trio.sleep(job.data)
        ended.append(trio.current_time())

    worker = Worker("q", handler, client=api, concurrency=10)
    await serve_until(worker, lambda: len(api.completed) == 100)
    # Handlers return every few ms while each ACKB takes 10 ms. A pull for fewer than 10
    # waits for the ACKB out, so pulls are fewer than one per returned handler (~90)...
    assert len(api.sent("PULLB")) < 60
    # ...but for that one ACKB only, so slots never idle for long: perfect packing ends at
    # sum(durations) / 10 = 0.635 s (waiting for every ACKB out would take ~0.87 s).
    assert max(ended) < sum(durations) / 10 + 0.15


class SlowPullApi(MemoryApi):
    """PULLB is answered only half a second after it arrives (a long round trip)."""

    async def _cmd_pullb(self, f: dict[str, Any]) -> dict[str, Any]:
        await trio.sleep(0.5)
        return await super()._cmd_pullb(f)


@pytest.mark.parametrize(("prefetch", "end"), [(0, 15), (4, 10.5)])
async def test_prefetch_hides_the_pull_round_trip(autojump_clock, prefetch: int, end: float):
    api = SlowPullApi()
    for i in range(20):
        api.add(i)
    ended: list[float] = []

    async def handler(job: Job) -> None:
        await trio.sleep(1)
        ended.append(trio.current_time())

    worker = Worker("q", handler, client=api, concurrency=2, prefetch=prefetch)
    await serve_until(worker, lambda: len(api.completed) == 20)
    # 20 one-second jobs, 2 at a time. Without prefetch, each pair waits for its pull:
    # 10 rounds of 1.5 s. With it, the next jobs are pulled while the last prefetched ones
    # run: only the first pull is waited for. Once the first pull (2 + 4) is started, the
    # pulls wait until fewer than half of `prefetch` wait for a slot, then refill it.
    assert max(ended) == end
    if prefetch:
        assert [f["count"] for f in api.sent("PULLB")][:4] == [6, 4, 4, 4]


async def pull_counts(jobs: int, handler_s: float) -> list[int]:
    """PULLB sizes of a default worker (concurrency 2) draining `jobs` jobs that take
    `handler_s` seconds each, over 0.5 s pulls."""
    api = SlowPullApi()
    for i in range(jobs):
        api.add(i)

    async def handler(job: Job) -> None:
        if handler_s:
            await trio.sleep(handler_s)

    worker = Worker("q", handler, client=api, concurrency=2)
    await serve_until(worker, lambda: len(api.completed) == jobs)
    return [f["count"] for f in api.sent("PULLB")]


async def test_default_prefetch_grows_while_handlers_outrun_the_pulls(autojump_clock):
    counts = await pull_counts(2000, 0)
    # Handlers finish every prefetched job long before a 0.5 s pull is back: the prefetch
    # (4 x 2) doubles at each starved pull until a pull asks for a full batch (500).
    assert counts[:7] == [10, 18, 34, 66, 130, 258, 500]
    assert max(counts) == 500


async def test_default_prefetch_stays_put_for_slow_handlers(autojump_clock):
    counts = await pull_counts(40, 1)
    # One-second jobs keep the slots busy and prefetched jobs waiting across each pull:
    # nothing to gain from holding more, so no pull asks beyond the first window (2 + 8).
    assert max(counts) <= 10


async def test_the_acks_of_a_batch_go_in_one_ackb(autojump_clock):
    api = MemoryApi()
    for i in range(30):
        api.add(i)

    async def handler(job: Job) -> None:
        pass

    worker = Worker("q", handler, client=api, concurrency=10, prefetch=0)
    await serve_until(worker, lambda: len(api.completed) == 30)
    # Without prefetch, three pulls of 10; the acks of a batch (or of two, when the second
    # was handled while the first ACKB was out) share one ACKB.
    assert [f["count"] for f in api.sent("PULLB")][:3] == [10, 10, 10]
    sizes = [len(f["ids"]) for f in api.sent("ACKB")]
    assert sum(sizes) == 30
    assert len(sizes) <= 3
    assert not api.sent("ACK")


@pytest.mark.parametrize("concurrency", [1, 8, 50])
async def test_handlers_that_suspend_get_every_slot_at_once(autojump_clock, concurrency: int):
    api = MemoryApi()
    for i in range(concurrency):
        api.add(i)
    gauge = Gauge()
    ended: list[float] = []

    async def handler(job: Job) -> None:
        with gauge:
            await trio.sleep(1)
        ended.append(trio.current_time())

    worker = Worker("q", handler, client=api, concurrency=concurrency)
    await serve_until(worker, lambda: len(api.completed) == concurrency)
    # One pull of `concurrency` jobs, all running together: all done after one second.
    assert gauge.peak == concurrency
    assert max(ended) == 1


async def test_an_empty_queue_holds_one_slot_while_another_queue_works(autojump_clock):
    api = MemoryApi()
    for i in range(12):
        api.add(i, queue="busy")
    gauge = Gauge()

    async def handler(job: Job) -> None:
        with gauge:
            await trio.sleep(1)

    worker = Worker(["busy", "empty"], handler, client=api, concurrency=4, prefetch=0)
    await serve_until(worker, lambda: len(api.completed) == 12)
    # Without prefetch, each queue first asks for its share (2 of 4); once "empty" came back
    # empty it asks for one job at a time, so its blocking pull holds one slot and "busy"
    # gets three.
    empty_pulls = [f["count"] for f in api.sent("PULLB") if f["queue"] == "empty"]
    assert empty_pulls[0] == 2
    assert set(empty_pulls[1:]) == {1}
    assert gauge.peak == 3


def test_sync_handlers_keep_their_thread_for_waiting_jobs_within_the_limit():
    # Real clock: the handlers run in threads.
    api = MemoryApi()
    for i in range(60):
        api.add(i)
    gauge = Gauge()
    threads: set[int] = set()

    def handler(job: Job) -> int:
        with gauge:
            threads.add(threading.get_ident())
        return int(job.data) * 2

    async def main() -> None:
        worker = Worker("q", handler, client=api, concurrency=3, pull_timeout_ms=50)
        await serve_until(worker, lambda: len(api.completed) == 60)
        assert worker.processed == 60

    trio.run(main)
    assert gauge.peak <= 3
    assert threading.get_ident() not in threads
    # Every result went back with its own job (ACK with result, not ACKB).
    assert api.completed == {i + 1: i * 2 for i in range(60)}
    assert len(api.sent("ACK")) == 60


def test_an_active_listener_sees_each_job_before_its_sync_handler_runs():
    api = MemoryApi()
    for i in range(20):
        api.add(i)
    order: list[tuple[str, int]] = []

    def handler(job: Job) -> None:
        order.append(("run", job.id))

    async def main() -> None:
        worker = Worker("q", handler, client=api, concurrency=4, pull_timeout_ms=50)
        worker.on("active", lambda job: order.append(("active", job.id)))
        await serve_until(worker, lambda: len(api.completed) == 20)

    trio.run(main)
    for job_id in range(1, 21):
        assert order.index(("active", job_id)) < order.index(("run", job_id))


def test_a_complete_wire_job_is_taken_whole_and_behaves_like_any_job():
    wire = dict(WIRE_JOB)
    job = Job.from_wire(wire, JobState.ACTIVE)
    # The input is left as it was (lists stay lists); the job holds tuples.
    assert wire == WIRE_JOB
    assert type(wire["tags"]) is list
    assert job.tags == ("send", "x")
    assert job.depends_on == (33,)
    assert job.children_ids == ()
    # Frozen, comparable, copyable, picklable (how `processes=` handlers receive it).
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        job.id = 1  # type: ignore[misc]
    assert attrs.evolve(job, priority=1).priority == 1
    assert pickle.loads(pickle.dumps(job.bind(None))) == job
    assert attrs.asdict(job, recurse=False)["queue"] == "emails"
    # An unknown extra key takes the generic path: it never becomes an attribute.
    odd = Job.from_wire({**WIRE_JOB, "future_key": 1}, JobState.ACTIVE)
    assert odd == job
    assert not hasattr(odd, "future_key")


class RefusingApi(MemoryApi):
    """Refuses, before sending, any pipelined batch holding an ACK with the result "HUGE"
    (as the client does for a request over the server's frame limit)."""

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        if any(r.get("result") == "HUGE" for r in requests):
            raise ValidationError("request too large")
        return await super()._request_many(requests, wait_ms)


async def test_an_outcome_refused_before_sending_fails_alone(autojump_clock):
    api = RefusingApi()
    for data in ("ok", "HUGE", None):
        api.add(data)
    errors: list[BaseException] = []

    async def handler(job: Job) -> Any:
        return job.data

    worker = Worker("q", handler, client=api, concurrency=3)
    worker.on("error", errors.append)
    await serve_until(worker, lambda: len(api.completed) == 2)  # stopping waits for all reports
    # The three outcomes went out in one batch, which was refused; sent one by one, the
    # other two are acknowledged and only the oversized one is reported as an error.
    assert api.completed == {1: "ok", 3: None}
    assert [type(e) for e in errors] == [ValidationError]
    assert worker.processed == 2
