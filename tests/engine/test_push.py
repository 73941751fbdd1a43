"""PUSH and PUSHB (PROTOCOL §2.1-§2.2): ids, options, validation, dedup rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shards.engine import ShardEngine
from tests.engine.helpers import T0, Harness, cmd


def test_push_allocates_ids_carrying_the_shard() -> None:
    h = Harness(shard=5)
    first, second = h.push(), h.push()
    # id = seq * 32 + shard, seq starting at 1
    assert (first, second) == (1 * 32 + 5, 2 * 32 + 5)


def test_pushed_job_has_every_option_on_the_wire(h: Harness) -> None:
    job_id = h.push(
        "q",
        {"x": 1},
        priority=7,
        delay=500,
        ttl=9000,
        timeout=3000,
        max_attempts=4,
        backoff=100,
        unique_key="u",
        tags=["a", "b"],
        lifo=True,
        remove_on_complete=True,
        remove_on_fail=True,
        stall_timeout=1234,
        job_id="custom",
        keep_completed_age=60,
        keep_completed_count=3,
        group_id="g",
    )
    reply = h("GETJOB", id=job_id)
    job = reply["job"]
    assert reply["state"] == "delayed"
    assert list(job) == [
        "id", "queue", "data", "priority", "created_at", "run_at", "started_at", "attempts",
        "max_attempts", "backoff", "ttl", "timeout", "unique_key", "depends_on", "progress",
        "progress_msg", "tags", "lifo", "remove_on_complete", "remove_on_fail",
        "last_heartbeat", "stall_timeout", "stall_count", "parent_id", "children_ids",
        "children_completed", "custom_id", "keep_completed_age", "keep_completed_count",
        "completed_at", "group_id",
    ]  # fmt: skip
    assert job["data"] == {"x": 1}
    assert job["priority"] == 7
    assert job["created_at"] == T0
    assert job["run_at"] == T0 + 500
    assert (job["ttl"], job["timeout"], job["max_attempts"], job["backoff"]) == (9000, 3000, 4, 100)
    assert job["unique_key"] == "u"
    assert job["tags"] == ["a", "b"]
    assert job["lifo"]
    assert job["remove_on_complete"]
    assert job["remove_on_fail"]
    assert job["stall_timeout"] == 1234
    assert job["custom_id"] == "custom"
    assert (job["keep_completed_age"], job["keep_completed_count"]) == (60, 3)
    assert job["group_id"] == "g"
    assert job["started_at"] == job["attempts"] == job["completed_at"] == 0
    assert job["parent_id"] is None
    assert job["children_ids"] == []


def test_push_publishes_a_pushed_event_with_the_data(h: Harness) -> None:
    job_id = h.push("q", {"a": 1})
    assert h.events == [
        {"event_type": "pushed", "queue": "q", "job_id": job_id, "timestamp": T0, "data": {"a": 1}}
    ]


@pytest.mark.parametrize(
    ("queue", "error"),
    [
        ("", "Queue name cannot be empty"),
        ("a" * 257, "Queue name too long (max 256 chars)"),
        (
            "bad name",
            "Queue name must contain only alphanumeric characters, underscores, hyphens, or dots",
        ),
    ],
)
def test_push_rejects_bad_queue_names(h: Harness, queue: str, error: str) -> None:
    assert h("PUSH", queue=queue, data=1) == {"ok": False, "error": error}
    assert h("PUSHB", queue=queue, jobs=[{"data": 1}]) == {"ok": True, "ids": []}


def test_push_rejects_oversized_data(h: Harness) -> None:
    data = "x" * 10_485_760  # estimate = length + 2 quotes
    reply = h("PUSH", queue="q", data=data)
    assert reply == {
        "ok": False,
        "error": "Job data too large (~10485762 bytes, max 10485760 bytes)",
    }
    assert h.counts()["waiting"] == 0


def test_duplicate_unique_key_is_refused_while_the_holder_lives(h: Harness) -> None:
    first = h.push(unique_key="k")
    assert h("PUSH", queue="q", data=2, unique_key="k") == {
        "ok": False,
        "error": "Duplicate job with key: k",
    }
    # another queue has its own keys
    h.push("other", unique_key="k")
    h("ACK", id=h.pull_id())
    assert h.state(first) == "completed"
    h.push(unique_key="k")


def test_custom_id_returns_the_live_job_and_creates_nothing(h: Harness) -> None:
    first = h.push(job_id="order-1")
    assert h.push(job_id="order-1") == first
    assert h.counts()["waiting"] == 1
    # per queue: the same custom id elsewhere is another job
    assert h.push("other", job_id="order-1") != first
    # once completed, the custom id is free again
    h("ACK", id=h.pull_id())
    second = h.push(job_id="order-1")
    assert second != first


def test_debounce_window(h: Harness) -> None:
    h.push(debounce_id="d", debounce_ttl=1000)
    assert h("PUSH", queue="q", data=1, debounce_id="d") == {
        "ok": False,
        "error": "Debounced: job with id 'd' was pushed recently",
    }
    h.push("other", debounce_id="d")  # per queue
    h.advance(1000)
    h.push(debounce_id="d")


def test_pushb_returns_ids_in_order_and_skips_refused_jobs(h: Harness) -> None:
    reply = h(
        "PUSHB",
        queue="q",
        jobs=[
            {"data": 1, "unique_key": "u"},
            {"data": 2, "unique_key": "u"},  # taken by the first: skipped
            {"data": "x" * 10_485_760},  # too large: skipped
            {"data": 3, "job_id": "c"},
            {"data": 4, "job_id": "c"},  # same custom id: the existing id again
            {},  # data optional in PUSHB
        ],
    )
    ids = reply["ids"]
    assert len(ids) == 4
    assert ids[2] == ids[1]
    assert ids == [ids[0], ids[1], ids[1], ids[3]]
    assert ids[0] < ids[1] < ids[3]
    assert h.counts()["waiting"] == 3


def test_pushb_of_more_than_1000_jobs_pushes_nothing(h: Harness) -> None:
    assert h("PUSHB", queue="q", jobs=[{"data": i} for i in range(1001)]) == {
        "ok": True,
        "ids": [],
    }
    assert len(h("PUSHB", queue="q", jobs=[{"data": i} for i in range(1000)])["ids"]) == 1000


def test_pushb_publishes_pushed_events(h: Harness) -> None:
    ids = h("PUSHB", queue="q", jobs=[{"data": 1}, {"data": 2}])["ids"]
    assert [(e["event_type"], e["job_id"]) for e in h.events] == [
        ("pushed", ids[0]),
        ("pushed", ids[1]),
    ]


def test_ids_are_not_reused_after_restart(h: Harness) -> None:
    first = h.push()
    h("CANCEL", id=first)
    again = h.reloaded()
    assert again.push() == first + 32


def test_plain_batch_skips_only_the_oversized_job_and_survives_restart(h: Harness) -> None:
    """A PUSHB of `{"data": …}` only (the batch fast path): an oversized payload is still
    refused alone, and the short records reload as the same jobs, in the same order."""
    big = "x" * 10_485_760
    ids = h("PUSHB", queue="q", jobs=[{"data": 1}, {"data": big}, {}, {"data": [3]}])["ids"]
    assert len(ids) == 3
    h.advance(5)
    assert h("PUSHB", queue="q", jobs=[{"data": {"n": 4}}])["ids"][0] > ids[-1]
    before = h("GETJOBS", queue="q", state="waiting")["jobs"]
    again = h.reloaded()
    assert again("GETJOBS", queue="q", state="waiting")["jobs"] == before
    # One queue-name and one timestamp object per distinct value, as when pushed (memory).
    first, second = (again.engine._st.jobs[i] for i in ids[:2])
    assert first.queue is second.queue
    assert first.created_at is second.created_at
    assert [again.pull()["data"] for _ in range(4)] == [1, None, [3], {"n": 4}]  # type: ignore[index]
    # A plain job changed in the same commit as its push is stored with the change.
    reply = h.engine.execute(cmd("PUSHB", queue="q", jobs=[{"data": 5}]), h.now)
    job_id = reply["ids"][0]  # type: ignore[index]
    h.engine.execute(cmd("CHANGEPRIORITY", id=job_id, priority=9), h.now)
    h.drain()
    assert h.reloaded()("GETJOB", id=job_id)["job"]["priority"] == 9


@pytest.mark.parametrize(
    "datas",
    [[1, {"a": [2]}, None, "three"], [1, {"a": [2]}, "x" * 10_485_760, None, "three"]],
    ids=["batch path", "one by one"],
)
def test_a_run_of_plain_pushes_equals_the_pushes_one_by_one(datas: list[object]) -> None:
    """`push_plain_run` (the shard process's path for pipelined option-less PUSHes) gives each
    push the reply, job, event and stored record that one PUSH at a time would have."""
    one, run = Harness(), Harness()
    singles = [one("PUSH", queue="q", data=d) for d in datas]
    assert run.engine.push_plain_run("q", datas, run.now) == singles
    run.drain()
    assert [r["ok"] for r in singles] == [not (isinstance(d, str) and len(d) > 99) for d in datas]
    assert run.events == one.events
    assert run.store == one.store
    waiting = one("GETJOBS", queue="q", state="waiting")
    assert run.reloaded()("GETJOBS", queue="q", state="waiting") == waiting
    bad = run.engine.push_plain_run("no such queue!", [1, 2], run.now)
    assert [r["ok"] for r in bad] == [False, False]
    assert run.counts()["waiting"] == 4


ENTRY_POINTS: dict[str, Callable[[ShardEngine, int], object]] = {
    "execute": lambda e, now: e.execute(cmd("COUNT", queue="q"), now),
    "push_plain_run": lambda e, now: e.push_plain_run("other", [1, 2], now),
    "tick": lambda e, now: e.tick("timeout", now),
    "expire_waiters": lambda e, now: e.expire_waiters(now),
    "next_deadline": lambda e, now: e.next_deadline(),
    "cancel_conn": lambda e, now: e.cancel_conn(7),
    "requeue": lambda e, now: e.requeue([], now),
    "latency": lambda e, now: e.latency(),
    "statistics": lambda e, now: e.statistics(),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_first_builds_the_jobs_a_plain_batch_deferred(entry: str) -> None:
    """A plain PUSHB commits its records and replies; its jobs are built after the reply
    (`settle`), or by whichever engine call comes first: no command sees them missing."""
    engine = ShardEngine(0)
    ids = engine.execute(cmd("PUSHB", queue="q", jobs=[{"data": i} for i in range(5)]), T0)["ids"]  # type: ignore[index]
    assert engine._st.unindexed  # deferred: nobody waits on the queue
    ENTRY_POINTS[entry](engine, T0)
    assert all(q.name != "q" for q, *_ in engine._st.unindexed)
    assert list(engine._st.queues["q"].jobs) == ids
    reply = engine.execute(cmd("PULLB", queue="q", count=10, timeout=0), T0)
    assert [job["id"] for job in reply["jobs"]] == ids  # type: ignore[index]


def test_a_plain_batch_for_a_waiting_puller_is_built_at_once(h: Harness) -> None:
    token = h.block("PULL", queue="q", timeout=5000)
    reply = h.engine.execute(cmd("PUSHB", queue="q", jobs=[{"data": 1}, {"data": 2}]), h.now)
    assert h.engine._st.unindexed == []
    h.drain()
    assert h.resolved[token]["job"]["id"] == reply["ids"][0]  # type: ignore[index]
