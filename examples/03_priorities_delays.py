"""Priorities (higher first), delayed jobs, and promoting a delayed job early.

python examples/03_priorities_delays.py
"""

from __future__ import annotations

import trio

from flashq import ClientOptions, FlashQ, JobState

QUEUE = "example-priorities"


async def main() -> None:
    async with FlashQ(ClientOptions.from_env()) as client:
        await client.obliterate(QUEUE)

        await client.push(QUEUE, "low", priority=1)
        await client.push(QUEUE, "high", priority=10)
        await client.push(QUEUE, "normal")
        later = await client.push(QUEUE, "in 300 ms", delay=300)
        much_later = await client.push(QUEUE, "in an hour", delay=3_600_000)
        print("delayed job state:", (await client.get_state(later)).value)

        order = []
        for _ in range(3):
            job = await client.pull(QUEUE, timeout=1000)
            assert job is not None
            order.append(job.data)
            await client.ack(job.id)
        print("pulled in priority order:", order)

        job = await client.pull(QUEUE, timeout=2000)  # waits until the delay has passed
        assert job is not None
        assert job.id == later
        print("after its delay:", job.data)
        await client.ack(job.id)

        await client.promote(much_later)  # no need to wait an hour
        assert await client.get_state(much_later) is JobState.WAITING
        job = await client.pull(QUEUE, timeout=1000)
        assert job is not None
        print("promoted:", job.data)
        await client.ack(job.id)


if __name__ == "__main__":
    trio.run(main)
