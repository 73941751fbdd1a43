"""The worker against a real server: limits, wire paths, shutdown, DLQ, server restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
import trio

from flashq.client import BlockingClient, FlashQ, Job, JobCounts, JobState, Worker
from flashq.client._api import Api
from flashq.client._session import Reply
from tests.client.helpers import Gauge, run, serve_until, sleep
from tests.harness import ServerProcess


class RecordingApi(Api):
    """Forwards to a real client and remembers which commands went out."""

    def __init__(self, client: FlashQ) -> None:
        self.client = client
        self.cmds: list[str] = []

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        self.cmds.append(fields["cmd"])
        return await self.client._request(fields, wait_ms)

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        self.cmds.extend(r["cmd"] for r in requests)
        return await self.client._request_many(requests, wait_ms)


@pytest.mark.parametrize("runtime", ["trio", "asyncio"])
def test_concurrency_and_batch_paths_against_the_server(runtime: str, shared_server: ServerProcess):
    queue = f"wk-limits-{runtime}"
    with BlockingClient(port=shared_server.port) as admin:
        ids = admin.push_batch(queue, list(range(40)))
    gauge = Gauge()
    done: set[int] = set()

    async def handler(job: Job) -> Any:
        with gauge:
            await sleep(0.02)
        done.add(job.id)
        return None if job.data % 2 else {"n": job.data}

    async def main() -> None:
        async with FlashQ(port=shared_server.port) as client:
            api = RecordingApi(client)
            worker = Worker(queue, handler, client=api, concurrency=5, pull_timeout_ms=200)
            await serve_until(worker, lambda: len(done) == 40)
            assert gauge.peak == 5
            assert "PULLB" in api.cmds
            assert "PULL" not in api.cmds
            assert "ACKB" in api.cmds
            assert api.cmds.count("ACK") == 20
            assert api.cmds.count("ACKB") < 20
            states = {await client.get_state(i) for i in ids}
            assert states == {JobState.COMPLETED}
            assert await client.get_result(ids[2]) == {"n": 2}

    run(runtime, main)


async def test_failing_handler_retries_then_reaches_the_dlq(shared_server: ServerProcess):
    queue = "wk-dlq"
    failures: list[int] = []

    async def handler(job: Job) -> None:
        raise RuntimeError(f"attempt {job.attempts}")

    async with FlashQ(port=shared_server.port) as client:
        job_id = await client.push(queue, {"x": 1}, max_attempts=3)
        worker = Worker(queue, handler, client=client, pull_timeout_ms=200)
        worker.on("failed", lambda job, exc: failures.append(job.attempts))
        await serve_until(worker, lambda: len(failures) == 3)
        dlq = await client.get_dlq(queue)
        assert [j.id for j in dlq] == [job_id]
        assert dlq[0].attempts == 3
        assert failures == [0, 1, 2]  # the attempts count each delivery's earlier failures
        assert await client.get_state(job_id) is JobState.FAILED


async def test_graceful_stop_finishes_jobs_in_flight(shared_server: ServerProcess):
    queue = "wk-graceful"
    started: set[int] = set()
    all_started = trio.Event()

    async def handler(job: Job) -> str:
        started.add(job.id)
        if len(started) == 3:
            all_started.set()
        await trio.sleep(0.5)
        return "done"

    async with FlashQ(port=shared_server.port) as client:
        ids = await client.push_batch(queue, [1, 2, 3])
        worker = Worker(queue, handler, client=client, concurrency=3, pull_timeout_ms=200)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                await all_started.wait()
                await client.push(queue, "late")  # pushed after the stop request below
                await worker.stop()
        assert [await client.get_result(i) for i in ids] == ["done"] * 3
        assert await client.count(queue) == 1  # the late job was not taken


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_server_restart_mid_run_loses_no_job(durable_server: ServerProcess, how: str):
    queue = "wk-restart"
    total = 300
    handled: set[int] = set()
    a_third = trio.Event()

    async def handler(job: Job) -> None:
        handled.add(job.data)
        if len(handled) >= total // 3:
            a_third.set()
        await trio.sleep(0.005)

    async with FlashQ(port=durable_server.port) as admin:
        ids = await admin.push_batch(queue, list(range(total)))
        worker = Worker(
            queue, handler, {"port": durable_server.port}, concurrency=10, batch_size=20,
            pull_timeout_ms=200,
        )  # fmt: skip
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                await nursery.start(worker.serve)
                await a_third.wait()
                # The server goes down with jobs in flight (gracefully, or every process
                # killed at once) and comes back on the same port with the same data.
                down = durable_server.stop if how == "sigterm" else durable_server.kill_all
                await trio.to_thread.run_sync(down)
                await trio.to_thread.run_sync(durable_server.start)
                # Then the worker carries on by itself until the queue is empty.
                while not _all_done(await admin.get_job_counts(queue)):  # noqa: ASYNC110 - another process
                    await trio.sleep(0.05)
                await worker.stop()
        assert durable_server._ready_count == 2  # it really went down and came back
        # At-least-once: every job was handled and is completed; none was lost. (A job whose
        # ACK was applied but whose reply died with the server completes without an event.)
        assert handled == set(range(total))
        assert {await admin.get_state(i) for i in ids} == {JobState.COMPLETED}


def _all_done(counts: JobCounts) -> bool:
    return counts.waiting == counts.active == counts.delayed == 0


@pytest.mark.parametrize("runtime", ["trio", "asyncio"])
def test_run_stops_gracefully_on_sigterm(shared_server: ServerProcess, tmp_path, runtime: str):
    queue = f"wk-sigterm-{runtime}"
    marker = tmp_path / "finished"
    script = textwrap.dedent(
        f"""
        import time
        from flashq import Worker

        def handler(job):
            time.sleep(1.0)
            open({str(marker)!r}, "w").write(str(job.id))
            return "ok"

        worker = Worker({queue!r}, handler, {{"port": {shared_server.port}}}, pull_timeout_ms=200)
        worker.run({runtime!r})
        """
    )
    with BlockingClient(port=shared_server.port) as client:
        job_id = client.push(queue, 1)
        proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
        try:
            deadline = time.monotonic() + 30
            while client.get_state(job_id) is not JobState.ACTIVE:
                assert time.monotonic() < deadline
                assert proc.poll() is None
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert marker.read_text() == str(job_id)
        assert client.get_result(job_id) == "ok"
