"""The BullMQ-style `Queue` and its bound `Job` helpers against a real server."""

from __future__ import annotations

import uuid

import pytest

from flashq.client import FlashQ, JobState, PushOptions, Queue
from tests.client.helpers import RUNTIMES, gather, run
from tests.harness import ServerProcess


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_queue_api(runtime: str, shared_server: ServerProcess):
    name = f"bull-{runtime}-{uuid.uuid4().hex[:6]}"

    async def main() -> None:
        async with Queue(name, port=shared_server.port) as queue:
            # add: the job comes back as stored, its name kept as the first tag
            job = await queue.add("email", {"to": "a@b.c"}, {"priority": 3, "tags": ["x"]})
            assert (job.name, job.tags, job.priority) == ("email", ("email", "x"), 3)
            assert job.state is JobState.WAITING
            bulk = await queue.add_bulk(
                [
                    {"name": "sms", "data": 1},
                    {"name": "sms", "data": 2, "opts": PushOptions(delay=60_000)},
                ]
            )
            assert [j.name for j in bulk] == ["sms", "sms"]
            assert [j.state for j in bulk] == [JobState.WAITING, JobState.DELAYED]

            stored = await queue.get_job(job.id)
            assert stored is not None
            assert stored.data == {"to": "a@b.c"}
            assert await queue.get_job_counts() == {
                "waiting": 2, "active": 0, "delayed": 1, "completed": 0, "failed": 0,
            }  # fmt: skip
            assert await queue.get_job_counts("waiting", "delayed") == {"waiting": 2, "delayed": 1}
            assert await queue.get_job_count_by_types("waiting", "delayed") == 3
            assert await queue.get_waiting_count() == 2
            assert await queue.get_delayed_count() == 1
            assert await queue.count() == 3
            assert {j.id for j in await queue.get_jobs(["waiting", "delayed"])} == {
                job.id, *(j.id for j in bulk)
            }  # fmt: skip
            assert await queue.get_job_state(bulk[1].id) is JobState.DELAYED

            # a worker's side, through the same client: the bound Job helpers
            client = queue.client
            active = await client.pull(name, timeout=2000)
            assert active is not None
            assert active.id == job.id  # priority 3 first
            await active.update_progress(25, "quarter")
            await active.log("working")
            assert await active.get_state() is JobState.ACTIVE
            assert [e.message for e in await active.get_logs()] == ["working"]

            async def finish_later() -> None:
                await client.ack(active.id, {"sent": 1})

            result, _ = await gather(active.finished(timeout=5000), finish_later())
            assert result == {"sent": 1}
            assert await queue.get_active_count() == 0
            assert await queue.get_completed_count() == 1

            # failures and the DLQ
            failing = await client.pull(name, timeout=2000)
            assert failing is not None
            await failing.discard()
            assert await queue.get_failed_count() == 1
            assert [j.id for j in await queue.get_dlq()] == [failing.id]
            assert await queue.retry_jobs() == 1
            assert await queue.get_failed_count() == 0

            # control
            await queue.pause()
            assert await queue.is_paused()
            await queue.resume()
            assert await queue.remove(bulk[1].id)
            assert not await queue.remove(bulk[1].id)  # already gone
            assert await queue.clean(0, 100, "waiting") == 1
            await queue.add("late", None)
            assert await queue.drain() == 1
            await queue.add("last", None)
            assert await queue.obliterate() == 1

    run(runtime, main)


async def test_queue_shares_a_client_and_does_not_close_it(shared_server: ServerProcess):
    async with FlashQ(port=shared_server.port) as client:
        async with Queue("bull-shared", client=client) as queue:
            await queue.add("a", 1)
        assert not client.closed
        assert await client.obliterate("bull-shared") == 1
