"""`client.pipeline()` against a real server, under Trio and asyncio: calls batched into one
write keep their order, their results and their errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from flashq.client import BlockingClient, FlashQ, Job, JobState, Pipeline
from flashq.errors import NotFoundError, ValidationError
from tests.client.helpers import RUNTIMES, gather, run, sleep
from tests.harness import ServerProcess

Body = Callable[[FlashQ, Pipeline, str], Awaitable[None]]
"""A test's steps, given a connected client, its pipeline and a fresh queue name."""


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _queue() -> str:
    return f"pipe-{uuid.uuid4().hex[:8]}"


def _run(server: ServerProcess, runtime: str, body: Body) -> None:
    queue = _queue()

    async def main() -> None:
        async with FlashQ(port=server.port, pool_size=1) as client:
            await body(client, client.pipeline(), queue)

    run(runtime, main)


def test_pushes_return_ids_in_order_and_jobs_hold_their_data(
    shared_server: ServerProcess, runtime: str
) -> None:
    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        ids = await pipe.execute(pipe.push(q, {"i": i}) for i in range(300))
        assert len(set(ids)) == 300
        jobs = await pipe.execute(pipe.get_job(i) for i in ids)
        assert [job.data["i"] for job in jobs if job] == list(range(300))
        assert await client.count(q) == 300
        pulled = await client.pull_batch(q, 300, timeout=1000)
        # one queue, same priority: pulled in push order, so the ids were in call order
        assert [job.id for job in pulled] == ids
        # jobs a pipeline returned are bound to the client: their helpers do real I/O
        first = jobs[0]
        assert first is not None
        assert await first.get_state() is JobState.ACTIVE

    _run(shared_server, runtime, body)


def test_later_calls_see_earlier_ones(shared_server: ServerProcess, runtime: str) -> None:
    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        jid, found, counts = await pipe.execute(
            [
                pipe.push(q, "x", job_id=f"cid-{q}"),
                pipe.get_job_by_custom_id(f"cid-{q}"),
                pipe.count(q),
            ]
        )
        assert isinstance(found, Job)
        assert found.id == jid
        assert counts == 1

    _run(shared_server, runtime, body)


def test_errors_raise_first_or_take_their_place(shared_server: ServerProcess, runtime: str) -> None:
    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        with pytest.raises(ValidationError):
            await pipe.execute([pipe.push(q, 1), pipe.push("bad queue!", 2), pipe.push(q, 3)])
        # the calls around the bad one still ran: the server answers each command
        assert await client.count(q) == 2
        results = await pipe.execute(
            [pipe.push(q, 4), pipe.ack(10**15), pipe.push(q, 5)], return_exceptions=True
        )
        assert isinstance(results[0], int)
        assert isinstance(results[2], int)
        assert isinstance(results[1], NotFoundError)
        assert await client.count(q) == 4
        assert await pipe.execute([]) == []

    _run(shared_server, runtime, body)


def test_calls_of_several_requests_share_the_round(
    shared_server: ServerProcess, runtime: str
) -> None:
    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        batch, single = await pipe.execute(
            [pipe.push_batch(q, list(range(2500))), pipe.push(q, "last")]
        )
        assert isinstance(batch, list)
        assert len(batch) == 2500
        assert single not in batch
        assert await client.count(q) == 2501

    _run(shared_server, runtime, body)


def test_calls_awaited_inside_a_callers_coroutine_run_in_the_round(
    shared_server: ServerProcess, runtime: str
) -> None:
    """`pipe.push` is a hand-made coroutine (`_Call`) that `execute` runs without a frame;
    awaited from a coroutine of the caller's, it must behave as the `async def` it replaces."""

    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        async def push_twice(data: Any) -> tuple[int, int]:
            first = await pipe.push(q, data)
            return first, await pipe.push(q, data, priority=3)

        async def push_bad() -> int:
            return await pipe.push("bad queue!", 1)

        pairs = await pipe.execute([push_twice("a"), push_twice("b")])
        assert len({jid for pair in pairs for jid in pair}) == 4
        results = await pipe.execute([push_bad(), push_twice("c")], return_exceptions=True)
        assert isinstance(results[0], ValidationError)
        assert isinstance(results[1], tuple)
        jobs = await pipe.execute(pipe.get_job(jid) for pair in pairs for jid in pair)
        assert [(job.data, job.priority) for job in jobs if job] == [
            ("a", 0), ("a", 3), ("b", 0), ("b", 3),
        ]  # fmt: skip
        assert await client.count(q) == 6

    _run(shared_server, runtime, body)


def test_foreign_coroutines_are_refused(shared_server: ServerProcess) -> None:
    async def elsewhere() -> int:
        await trio.sleep(0.01)
        return 1

    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        with pytest.raises(TypeError, match="pipeline's own methods"):
            await pipe.execute([elsewhere()])
        # the pipeline and the connection are still usable
        assert await pipe.execute([pipe.count(q)]) == [0]

    _run(shared_server, "trio", body)


def test_big_and_small_requests_from_many_tasks_arrive_whole(
    shared_server: ServerProcess, runtime: str
) -> None:
    """Callers write straight to the socket while the writer task is idle; what does not
    fit (a 3 MB request outgrows the socket buffer) goes to the writer, and requests made
    meanwhile queue behind it. Frames must still reach the server whole and in order."""
    big = ["x" * (3 << 20) + str(i) for i in range(6)]

    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        async def push(data: Any, delay: float) -> int:
            await sleep(delay)  # arrive one by one, mostly with the writer idle
            return await client.push(q, data)

        pushes = [push(data, 0.002 * i) for i, data in enumerate(big)]
        pushes += [push({"i": i}, 0.0001 * i) for i in range(300)]
        ids = await gather(*pushes)
        jobs = await pipe.execute(pipe.get_job(i) for i in ids)
        assert [job.data if job else None for job in jobs[:6]] == big
        assert [job.data["i"] for job in jobs[6:] if job] == list(range(300))

    _run(shared_server, runtime, body)


def test_blocking_client_pipeline_runs_without_an_event_loop(shared_server: ServerProcess) -> None:
    q = _queue()
    with BlockingClient(port=shared_server.port) as client:
        pipe = client.pipeline()
        ids = pipe.run(pipe.push(q, {"i": i}) for i in range(100))
        assert len(set(ids)) == 100
        assert client.count(q) == 100
        jobs = pipe.run(pipe.get_job(i) for i in ids)
        assert [job.data["i"] for job in jobs if job] == list(range(100))
        first = jobs[0]
        assert first is not None
        first.log("from a pipelined job")  # bound to the blocking client: runs now
        assert [e.message for e in client.get_logs(first.id)] == ["from a pipelined job"]
        results = pipe.run([pipe.push(q, 1), pipe.ack(10**15)], return_exceptions=True)
        assert isinstance(results[0], int)
        assert isinstance(results[1], NotFoundError)


def test_run_is_refused_on_an_async_clients_pipeline(shared_server: ServerProcess) -> None:
    async def body(client: FlashQ, pipe: Pipeline, q: str) -> None:
        calls = [pipe.count(q)]
        with pytest.raises(TypeError, match="await execute"):
            pipe.run(calls)
        assert await pipe.execute(calls) == [0]  # the calls were not started

    _run(shared_server, "trio", body)
