"""Failures: automatic retries with backoff, `Retry` for an explicit delay, the dead-letter
queue, and sending dead jobs back.

    python examples/04_retries_dlq.py
"""

from __future__ import annotations

import trio

from flashq import ClientOptions, FlashQ, Job, Retry, Worker

QUEUE = "example-retries"


asked_to_wait: set[int] = set()


async def flaky(job: Job) -> str:
    if job.data == "rate-limited" and job.id not in asked_to_wait:
        asked_to_wait.add(job.id)
        raise Retry(delay_s=0.2)  # try again in 200 ms; does not count as a failure
    if job.data == "broken":
        raise ValueError(f"cannot process (attempt {job.attempts + 1})")
    return f"processed {job.data}"


async def main() -> None:
    options = ClientOptions.from_env()
    async with FlashQ(options) as client:
        await client.obliterate(QUEUE)
        ok = await client.push(QUEUE, "rate-limited")
        broken = await client.push(QUEUE, "broken", max_attempts=3, backoff=50)

        failures: list[str] = []
        dead = trio.Event()

        def on_failed(job: Job, exc: Exception) -> None:
            failures.append(str(exc))
            if job.attempts + 1 == job.max_attempts:  # this failure sends it to the DLQ
                dead.set()

        worker = Worker(QUEUE, flaky, options, pull_timeout_ms=200)
        worker.on("failed", on_failed)
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            await client.finished(ok, timeout=5000)
            await dead.wait()
            await worker.stop()

        print("result:", await client.get_result(ok))
        print("failures:", failures)
        in_dlq = await client.get_dlq(QUEUE)
        print("dead-lettered:", [(j.id, j.data, j.attempts) for j in in_dlq])
        moved = await client.retry_dlq(QUEUE, broken)
        print("sent back to the queue:", moved, "->", (await client.get_state(broken)).value)
        await client.obliterate(QUEUE)


if __name__ == "__main__":
    trio.run(main)
