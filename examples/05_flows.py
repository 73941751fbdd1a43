"""A flow: a parent job that runs once all its children (in other queues) are done.

python examples/05_flows.py
"""

from __future__ import annotations

import trio

from flashq import ClientOptions, FlashQ, FlowChild, Job, Worker

SECTIONS = "example-flow-sections"
REPORTS = "example-flow-reports"


async def write_section(job: Job) -> str:
    await trio.sleep(0.02)
    return f"section {job.data['name']} written"


async def assemble(job: Job) -> str:
    return f"report {job.data['title']} assembled"


async def main() -> None:
    options = ClientOptions.from_env()
    async with FlashQ(options) as client:
        for queue in (SECTIONS, REPORTS):
            await client.obliterate(queue)

        flow = await client.push_flow(
            REPORTS,
            {"title": "monthly"},
            [FlowChild(SECTIONS, {"name": name}) for name in ("sales", "ops", "hr")],
        )
        print("parent", flow.parent_id, "waits for", list(flow.children_ids))
        print("parent state:", (await client.get_state(flow.parent_id)).value)

        children = Worker(SECTIONS, write_section, options, concurrency=3, pull_timeout_ms=200)
        parents = Worker(REPORTS, assemble, options, pull_timeout_ms=200)
        async with trio.open_nursery() as nursery:
            await nursery.start(children.serve)
            await nursery.start(parents.serve)
            result = await client.finished(flow.parent_id, timeout=10_000)
            await children.stop()
            await parents.stop()

        for child in flow.children_ids:
            print(" child", child, "->", await client.get_result(child))
        print("parent ->", result)


if __name__ == "__main__":
    trio.run(main)
