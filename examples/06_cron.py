"""Cron: a schedule that pushes a job every second, consumed by a worker, then removed.

python examples/06_cron.py
"""

from __future__ import annotations

import trio

from flashq import ClientOptions, FlashQ, Job, Worker

QUEUE = "example-cron"
CRON = "example-heartbeat"


async def main() -> None:
    options = ClientOptions.from_env()
    async with FlashQ(options) as client:
        await client.obliterate(QUEUE)
        # Six fields, seconds first: every second. (`repeat_every=1000` would do the same.)
        await client.add_cron(CRON, QUEUE, "* * * * * *", {"ping": True})
        for cron in await client.list_crons():
            if cron.name == CRON:
                print("registered:", cron.name, cron.schedule, "next run at", cron.next_run)

        runs: list[int] = []
        enough = trio.Event()

        async def handle(job: Job) -> None:
            runs.append(job.id)
            if len(runs) == 2:
                enough.set()

        worker = Worker(QUEUE, handle, options, pull_timeout_ms=200)
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            with trio.fail_after(15):
                await enough.wait()
            await worker.stop()

        await client.delete_cron(CRON)
        print(
            "cron fired",
            len(runs),
            "times; removed:",
            CRON not in {c.name for c in await client.list_crons()},
        )
        await client.obliterate(QUEUE)


if __name__ == "__main__":
    trio.run(main)
