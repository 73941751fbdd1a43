"""asyncio (FastAPI / aiohttp style): one client shared by request handlers, a worker in
the same event loop, and a handler that waits for its job's result.

No web framework needed to run it: `handle_request` is what a route would do; in FastAPI,
create the client and start the worker in the app's lifespan instead of `main`.

    python examples/07_asyncio_producer.py
"""

from __future__ import annotations

import asyncio

from flashq import ClientOptions, FlashQ, Job, Worker

QUEUE = "example-asyncio"


async def thumbnail(job: Job) -> dict[str, str]:
    await asyncio.sleep(0.01)
    return {"thumbnail": f"{job.data['image']}.thumb.png"}


async def handle_request(client: FlashQ, image: str, *, wait: bool) -> dict[str, object]:
    """What a POST /thumbnails route would do: enqueue, optionally wait for the result."""
    job_id = await client.push(QUEUE, {"image": image}, max_attempts=3)
    if not wait:
        return {"job": job_id, "status": "queued"}
    return {"job": job_id, "result": await client.finished(job_id, timeout=10_000)}


async def main() -> None:
    options = ClientOptions.from_env()
    client = FlashQ(options)  # lifespan startup
    await client.connect()
    await client.obliterate(QUEUE)
    all_done = asyncio.Event()
    worker = Worker(QUEUE, thumbnail, options, concurrency=10)

    def on_completed(job: Job, result: object) -> None:
        if worker.processed == 50:
            all_done.set()

    worker.on("completed", on_completed)
    await worker.start()  # runs in the background of this event loop

    # Fifty concurrent "requests": their calls are pipelined on one connection.
    responses = await asyncio.gather(
        *(handle_request(client, f"img{i}", wait=i % 5 == 0) for i in range(50))
    )
    print(sum("result" in r for r in responses), "answered with a result, e.g.", responses[0])
    print(sum("status" in r for r in responses), "answered 'queued'")
    await all_done.wait()

    await worker.stop()  # lifespan shutdown
    await client.close()
    print("all 50 thumbnails done")


if __name__ == "__main__":
    asyncio.run(main())
