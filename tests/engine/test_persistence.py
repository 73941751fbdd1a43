"""Storage records: what each command writes, and load() rebuilding the same shard."""

from __future__ import annotations

from typing import Any

import pytest

from flashq.errors import StorageError
from tests.engine.helpers import Cluster, Harness

QUEUES = ("q", "other", "g")


def snapshot(h: Harness) -> dict[str, Any]:
    """Everything a client can observe about the shard."""
    last_id = h.engine.statistics().seq * 32 + h.shard
    jobs = {}
    for job_id in range(h.shard, last_id + 1, 32):
        jobs[job_id] = (
            h("GETJOB", id=job_id),
            h("GETRESULT", id=job_id),
            h("GETLOGS", id=job_id),
        )
    return {
        "jobs": jobs,
        "queues": sorted(h("LISTQUEUES")["queues"], key=lambda q: q["name"]),
        "crons": h("CRONLIST"),
        "counts": {q: h("GETJOBCOUNTS", queue=q) for q in QUEUES},
        "dlq": {q: h("DLQ", queue=q) for q in QUEUES},
        "stats": h("STATS"),
        "custom": h("GETJOBBYCUSTOMID", job_id="cid"),
        "paused": {q: h("ISPAUSED", queue=q) for q in QUEUES},
        "total": h("METRICS")["metrics"]["total_pushed"],
    }


def busy_shard() -> Harness:
    h = Harness()
    h.push("q", {"a": 1}, priority=2, tags=["t"], job_id="cid", unique_key="u")
    h.push("q", [1, 2], delay=5000, lifo=True)
    active = h.push("q", "active", priority=9)
    h.pull("q")
    h("PROGRESS", id=active, progress=40, message="half")
    h("LOG", id=active, message="hello", level="debug")
    done = h.push("other", 7)
    h.pull("other")
    h("ACK", id=done, result={"r": True})
    gone = h.push("other", remove_on_complete=True)
    h.pull("other")
    h("ACK", id=gone, result=1)
    dead = h.push("other", max_attempts=1)
    h.pull("other")
    h("FAIL", id=dead, error="boom")
    retried = h.push("other", backoff=10, max_attempts=5)
    h.pull("other")
    h("FAIL", id=retried, error="again")
    h.push("q", depends_on=[h.push("q", delay=100_000)])
    h.push("g", group_id="g1")
    h.push("g", group_id="g1")
    h.pull("g")
    h.pull("g")  # parks the second
    h("PAUSE", queue="g")
    h("RATELIMIT", queue="other", limit=50)
    h("SETCONCURRENCY", queue="q", limit=10)
    h("CRON", name="every", queue="q", repeat_every=60_000, data={"c": 1}, limit=5)
    cancelled = h.push("q")
    h("CANCEL", id=cancelled)
    h.push("q", debounce_id="deb")
    h.now += 10
    return h


def test_load_rebuilds_the_same_shard() -> None:
    h = busy_shard()
    reloaded = h.reloaded()
    # what load does to jobs that were active at the crash
    h.engine.requeue(list(h.engine._st.active), h.now)
    h.drain()
    assert snapshot(reloaded) == snapshot(h)
    # the restarted shard behaves the same from here on
    for queue in QUEUES:
        h("RESUME", queue=queue)
        reloaded("RESUME", queue=queue)
        assert [h.pull_id(queue) for _ in range(4)] == [reloaded.pull_id(queue) for _ in range(4)]
    assert reloaded.push() == h.push()
    assert reloaded("PUSH", queue="q", data=1, debounce_id="deb")["ok"] is False
    assert reloaded("PUSH", queue="q", data=1, unique_key="u")["ok"] is False


def test_active_jobs_come_back_waiting_with_attempts_kept(h: Harness) -> None:
    job_id = h.push(max_attempts=3)
    h.pull()
    h("FAIL", id=job_id)
    h.pull()
    again = h.reloaded()
    job = again("GETJOB", id=job_id)
    assert job["state"] == "waiting"
    assert (job["job"]["attempts"], job["job"]["started_at"]) == (1, 0)


def test_pull_writes_nothing(h: Harness) -> None:
    h.push()
    h.engine.execute({"cmd": "PULL", "queue": "q", "timeout": 0}, h.now)
    assert h.engine.take_changes() == {}


def test_changes_hold_only_the_latest_state_of_each_record(h: Harness) -> None:
    engine = h.engine
    ids = engine.execute({"cmd": "PUSHB", "queue": "q", "jobs": [{"data": i} for i in range(3)]}, 0)
    assert ids is not None
    job_id = ids["ids"][0]
    engine.execute({"cmd": "CANCEL", "id": job_id}, 0)
    changes = engine.take_changes()
    assert changes[f"j:{job_id}"] is None
    assert sum(1 for k in changes if k.startswith("j:")) == 3
    assert "m:seq" in changes


def test_completed_records_beyond_retention_are_deleted(h: Harness) -> None:
    job_id = h.push(keep_completed_count=1)
    h.pull()
    h("ACK", id=job_id)
    assert f"j:{job_id}" in h.store
    second = h.push(keep_completed_count=1)
    h.pull()
    h("ACK", id=second)
    assert f"j:{job_id}" not in h.store


def test_dependency_released_while_down_is_applied_on_load() -> None:
    c = Cluster([0, 1])
    dep = c[1].push("q45")
    job_id = c[0].push("q9", depends_on=[dep])
    c.deliver()
    job = c[1].pull("q45")
    assert job is not None
    c[1]("ACK", id=dep)
    c[1].outbox.clear()  # the _DEPDONE is lost with a crash of shard 1 ...
    c.shards[1] = c[1].reloaded()  # ... and sent again when it restarts
    c.deliver()
    assert c[0].state(job_id) == "waiting"


def test_corrupt_record_raises_storage_error(h: Harness) -> None:
    with pytest.raises(StorageError):
        h.engine.load({"j:32": b"\xc1"}, h.now)
