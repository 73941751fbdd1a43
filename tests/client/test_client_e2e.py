"""Every client method against a real server: async client under Trio and asyncio, and the
blocking client, all three running the same scenarios.

The scenarios are written once as coroutines. The blocking client runs them through an
adapter whose methods return already-finished awaitables, driven without an event loop.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from flashq.client import (
    BlockingClient,
    CronJob,
    FlashQ,
    FlowChild,
    JobCounts,
    JobState,
    Metrics,
    PushOptions,
    QueueInfo,
    Stats,
)
from flashq.client._sync import Done, drive
from flashq.errors import NotFoundError, ValidationError
from tests.client.helpers import run
from tests.harness import ServerProcess

KINDS = ["trio", "asyncio", "blocking"]
Scenario = Callable[[Any, str], Awaitable[None]]


class _AwaitableBlocking:
    """A BlockingClient whose methods return finished awaitables (for the shared scenarios)."""

    def __init__(self, client: BlockingClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        return lambda *args, **kwargs: Done(method(*args, **kwargs))


def _run_scenario(kind: str, server: ServerProcess, scenario: Scenario, **opts: Any) -> None:
    queue = f"{scenario.__name__}-{kind}-{uuid.uuid4().hex[:6]}"
    if kind == "blocking":
        with BlockingClient(port=server.port, **opts) as client:
            drive(scenario(_AwaitableBlocking(client), queue))  # type: ignore[arg-type]
        return

    async def main() -> None:
        async with FlashQ(port=server.port, **opts) as client:
            assert client.runtime == kind
            await scenario(client, queue)

    run(kind, main)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- scenarios -------------------------------------------------------------------------------


async def core(c: Any, q: str) -> None:
    # push with options; the custom id makes a second push return the same job
    jid = await c.push(q, {"n": 0}, priority=5, job_id="cid-1", tags=["t"])
    assert await c.push(q, {"n": 0}, PushOptions(job_id="cid-1")) == jid
    job = await c.get_job(jid)
    assert (job.id, job.priority, job.custom_id, job.tags) == (jid, 5, "cid-1", ("t",))
    assert job.state is JobState.WAITING
    assert (await c.get_job_by_custom_id("cid-1")).id == jid
    assert await c.get_state(jid) is JobState.WAITING
    ids = await c.push_batch(q, [{"n": i} for i in range(1, 4)] + [({"n": 9}, {"priority": -1})])
    assert len(ids) == 4
    assert await c.count(q) == 5
    counts = await c.get_job_counts(q)
    assert isinstance(counts, JobCounts)
    assert counts.waiting == 5
    assert {j.id for j in await c.get_jobs_batch([jid, *ids])} == {jid, *ids}
    assert {j.id for j in await c.get_jobs(q, JobState.WAITING)} == {jid, *ids}

    # the highest priority first; progress, heartbeat, logs, partial results while active
    first = await c.pull(q, timeout=2000)
    assert first.id == jid
    assert first.state is JobState.ACTIVE
    assert first.started_at > 0
    await c.progress(first.id, 40, "forty")
    assert tuple(await c.get_progress(first.id)) == (40, "forty")
    await c.heartbeat(first.id)
    await c.log(first.id, "hello", "warn")
    assert [(e.message, e.level) for e in await c.get_logs(first.id)] == [("hello", "warn")]
    await c.partial(first.id, {"chunk": "a"}, index=0)
    await c.ack(first.id, {"ok": True})
    assert await c.get_state(first.id) is JobState.COMPLETED
    assert await c.get_result(first.id) == {"ok": True}
    assert await c.finished(first.id, 1000) == {"ok": True}

    # batches: PULLB, ACKB, and FAIL sending a job back (max_attempts 0 = retry forever)
    batch = await c.pull_batch(q, 10, timeout=2000)
    assert [j.data["n"] for j in batch] == [1, 2, 3, 9]
    assert await c.ack_batch([j.id for j in batch[:3]]) == 3
    await c.fail(batch[3].id, "nope")
    again = await c.get_job(batch[3].id)
    assert again.state is JobState.WAITING
    assert again.attempts == 1
    with pytest.raises(NotFoundError):
        await c.ack(batch[0].id)  # not active any more


async def management(c: Any, q: str) -> None:
    delayed = await c.push(q, {"v": 1}, delay=60_000)
    assert await c.get_state(delayed) is JobState.DELAYED
    await c.change_priority(delayed, 7)
    await c.update(delayed, {"v": 2})
    job = await c.get_job(delayed)
    assert (job.priority, job.data) == (7, {"v": 2})
    await c.promote(delayed)
    assert await c.get_state(delayed) is JobState.WAITING

    active = await c.pull(q, timeout=2000)
    assert active.id == delayed
    await c.move_to_delayed(active.id, 60_000)
    assert await c.get_state(active.id) is JobState.DELAYED
    await c.discard(active.id)
    assert await c.get_state(active.id) is JobState.FAILED
    dlq = await c.get_dlq(q)
    assert [j.id for j in dlq] == [active.id]
    assert dlq[0].state is JobState.FAILED
    assert await c.retry_dlq(q, active.id) == 1
    assert await c.get_state(active.id) is JobState.WAITING
    await c.discard(active.id)
    assert await c.purge_dlq(q) == 1

    gone = await c.push(q, 3)
    await c.cancel(gone)
    assert await c.get_state(gone) is JobState.UNKNOWN
    assert await c.get_job(gone) is None
    with pytest.raises(NotFoundError):
        await c.cancel(gone)

    # a flow: the parent waits for its children
    children_q = q + "-children"
    flow = await c.push_flow(
        q, {"report": 1}, [FlowChild(children_q, 1), {"queue": children_q, "data": 2}]
    )
    assert len(flow.children_ids) == 2
    assert await c.get_state(flow.parent_id) is JobState.WAITING_CHILDREN
    for _ in range(2):
        child = await c.pull(children_q, timeout=2000)
        await c.ack(child.id, child.data * 10)
    parent = await c.pull(q, timeout=5000)
    assert parent is not None
    assert parent.id == flow.parent_id


async def queues(c: Any, q: str) -> None:
    await c.pause(q)
    assert await c.is_paused(q)
    await c.resume(q)
    assert not await c.is_paused(q)
    await c.push_batch(q, [1, 2, 3])
    assert await c.drain(q) == 3
    await c.push_batch(q, [1, 2])
    await c.set_rate_limit(q, 50)
    await c.set_concurrency(q, 4)
    infos = {i.name: i for i in await c.list_queues()}
    assert isinstance(infos[q], QueueInfo)
    assert (infos[q].pending, infos[q].rate_limit, infos[q].concurrency_limit) == (2, 50, 4)
    await c.clear_rate_limit(q)
    await c.clear_concurrency(q)
    info = {i.name: i for i in await c.list_queues()}[q]
    assert (info.rate_limit, info.concurrency_limit) == (None, None)
    assert await c.clean(q, 0, "waiting") == 2
    await c.push(q, 1)
    assert await c.obliterate(q) == 1
    assert await c.count(q) == 0


async def monitoring(c: Any, q: str) -> None:
    await c.ping()
    name = q + "-cron"
    await c.add_cron(name, q, "0 0 0 1 1 *", {"c": 1}, priority=2)
    crons = {cr.name: cr for cr in await c.list_crons()}
    assert isinstance(crons[name], CronJob)
    assert (crons[name].queue, crons[name].data, crons[name].priority) == (q, {"c": 1}, 2)
    await c.add_cron(name + "-every", q, repeat_every=3_600_000, limit=1)
    await c.delete_cron(name)
    await c.delete_cron(name + "-every")
    assert name not in {cr.name for cr in await c.list_crons()}
    with pytest.raises(NotFoundError):
        await c.delete_cron(name)
    with pytest.raises(ValidationError):
        await c.add_cron(name, q)  # neither schedule nor repeat_every
    await c.push(q, 1)
    stats = await c.stats()
    assert isinstance(stats, Stats)
    assert stats.queued >= 1
    metrics = await c.metrics()
    assert isinstance(metrics, Metrics)
    assert metrics.total_pushed >= 1

    key = q + "-k"
    await c.kv_set(key, {"a": 1})
    assert await c.kv_get(key) == {"a": 1}
    assert await c.kv_exists(key)
    assert await c.kv_ttl(key) == -1
    assert await c.kv_expire(key, 60_000)
    assert 0 < await c.kv_ttl(key) <= 60_000
    assert await c.kv_mset([{"key": key + "2", "value": 2}]) == 1
    assert await c.kv_mget([key, key + "2", key + "3"]) == [{"a": 1}, 2, None]
    assert sorted(await c.kv_keys(key + "*")) == [key, key + "2"]
    assert await c.kv_incr(key + "n", 5) == 5
    assert await c.kv_del(key)
    assert not await c.kv_exists(key)


@pytest.mark.parametrize("scenario", [core, management, queues, monitoring])
def test_every_method(kind: str, shared_server: ServerProcess, scenario: Scenario):
    _run_scenario(kind, shared_server, scenario)


def test_core_in_binary_mode(kind: str, shared_server: ServerProcess):
    _run_scenario(kind, shared_server, core, binary=True)


def test_raw_call_and_unknown_job(kind: str, shared_server: ServerProcess):
    async def scenario(c: Any, q: str) -> None:
        reply = await c.call("PUSH", queue=q, data=None)
        assert reply["ok"] is True
        assert "reqId" not in reply
        assert await c.get_state(10**12) is JobState.UNKNOWN
        with pytest.raises(NotFoundError):
            await c.progress(10**12, 1)

    scenario.__name__ = "raw"
    _run_scenario(kind, shared_server, scenario)
