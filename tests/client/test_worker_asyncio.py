"""The same worker under asyncio (real clock, short jobs): the runtime seam holds."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from flashq.client import Job, Worker
from tests.client.helpers import Gauge, serve_until
from tests.client.memory_api import MemoryApi


def test_concurrency_and_batches_under_asyncio():
    api = MemoryApi()
    for i in range(20):
        api.add(i)
    gauge = Gauge()

    async def handler(job: Job) -> Any:
        with gauge:
            await asyncio.sleep(0.01)
        return None if job.data % 2 else job.data

    async def main() -> None:
        worker = Worker("q", handler, client=api, concurrency=4, pull_timeout_ms=50)
        await serve_until(worker, lambda: len(api.completed) == 20)
        assert worker.state == "stopped"

    asyncio.run(main())
    assert gauge.peak == 4
    assert len(api.sent("ACK")) == 10
    assert sum(len(f["ids"]) for f in api.sent("ACKB")) == 10


def test_sync_handler_thread_and_progress_under_asyncio():
    api = MemoryApi()
    api.add(5)
    progress: list[int] = []

    def handler(job: Job) -> int:
        assert threading.current_thread() is not threading.main_thread()
        job.update_progress(30)
        return int(job.data) + 1

    async def main() -> None:
        worker = Worker("q", handler, client=api, pull_timeout_ms=50)
        worker.on("progress", lambda job, p: progress.append(p))
        await serve_until(worker, lambda: len(api.completed) == 1)

    asyncio.run(main())
    assert api.completed[1] == 6
    assert progress == [30]


def test_graceful_stop_waits_for_the_job_in_flight_under_asyncio():
    api = MemoryApi()
    api.add("slow")
    started = asyncio.Event()

    async def handler(job: Job) -> str:
        started.set()
        await asyncio.sleep(0.1)
        return "finished"

    async def main() -> None:
        worker = Worker("q", handler, client=api, pull_timeout_ms=50)
        await worker.start()
        await started.wait()
        await worker.stop()  # returns only once the job has been acked

    asyncio.run(main())
    assert api.completed == {1: "finished"}
