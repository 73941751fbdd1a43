"""A worker under Trio: concurrency, progress, logs and events; stops once the queue is done.

python examples/02_worker.py
"""

from __future__ import annotations

import trio

from flashq import ClientOptions, FlashQ, Job, Worker

QUEUE = "example-worker"
JOBS = 20


async def resize(job: Job) -> dict[str, int]:
    """The handler: its return value becomes the job's result."""
    await job.update_progress(10, "downloading")
    await trio.sleep(0.05)  # pretend to work
    await job.log(f"resized image {job.data['image']}")
    return {"width": job.data["width"] // 2}


async def main() -> None:
    options = ClientOptions.from_env()
    async with FlashQ(options) as client:
        await client.obliterate(QUEUE)
        await client.push_batch(QUEUE, [{"image": i, "width": 1000 + i} for i in range(JOBS)])

        done = trio.Event()
        finished: list[int] = []

        def on_completed(job: Job, result: dict[str, int]) -> None:
            finished.append(job.id)
            if len(finished) == JOBS:
                done.set()

        worker = Worker(QUEUE, resize, options, concurrency=5)
        worker.on("completed", on_completed)
        worker.on("failed", lambda job, exc: print("job", job.id, "failed:", exc))

        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)  # returns once the worker is pulling
            await done.wait()
            await worker.stop()  # graceful: jobs in flight finish first

        print(f"{len(finished)} jobs done by {worker.processed} handler runs")
        print("last result:", await client.get_result(finished[-1]))


if __name__ == "__main__":
    trio.run(main)
