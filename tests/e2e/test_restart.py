"""A graceful restart (and a restart with a different number of shard processes) keeps
every kind of state on the default embedded storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashq.client.blocking import BlockingClient
from tests.harness import ServerProcess

pytestmark = pytest.mark.slow

QUEUES = ["alpha", "beta", "gamma.x", "delta-1"]


def fill(c: BlockingClient) -> dict[str, Any]:
    """Create one of everything; return what to compare after the restart."""
    ids: dict[str, Any] = {}
    for q in QUEUES:
        c.call("PUSHB", queue=q, jobs=[{"data": {"q": q, "i": i}} for i in range(50)])
    ids["delayed"] = c.call("PUSH", queue="alpha", data="later", delay=3_600_000)["id"]
    ids["custom"] = c.call("PUSH", queue="beta", data="c", job_id="order-42")["id"]
    ids["unique"] = c.call("PUSH", queue="beta", data="u", unique_key="only-one")["id"]
    ids["prio"] = c.call("PUSH", queue="gamma.x", data="p", priority=9)["id"]
    # Dependency on a job of another queue (another shard): waits for it.
    ids["dep_target"] = c.call("PUSH", queue="dep-src", data="first")["id"]
    ids["dependent"] = c.call("PUSH", queue="dep-dst", data="then", depends_on=[ids["dep_target"]])[
        "id"
    ]
    flow = c.call(
        "FLOW",
        queue="parents",
        data="parent",
        children=[{"queue": "kids-a", "data": 1}, {"queue": "kids-b", "data": 2}],
    )
    ids["flow_parent"] = flow["parent_id"]
    # Active (pulled, not acked): must come back as waiting with its attempts.
    ids["failed_once"] = c.call("PUSH", queue="delta-1", data="f", max_attempts=5, priority=100)[
        "id"
    ]
    job = c.call("PULL", queue="delta-1", timeout=1000)["job"]
    assert job["id"] == ids["failed_once"]
    c.call("FAIL", id=job["id"], error="first try")
    job = c.call("PULL", queue="delta-1", timeout=1000)["job"]
    assert job["id"] == ids["failed_once"]
    c.call("PROGRESS", id=job["id"], progress=40, message="almost")
    c.call("LOG", id=job["id"], message="working", level="info")
    # Completed with a result, and a DLQ entry.
    done = c.call("PULL", queue="alpha", timeout=1000)["job"]
    c.call("ACK", id=done["id"], result={"answer": 42})
    ids["completed"] = done["id"]
    ids["dead"] = c.call("PUSH", queue="gamma.x", data="dead", max_attempts=1, priority=50)["id"]
    dead = c.call("PULL", queue="gamma.x", timeout=1000)["job"]
    assert dead["id"] == ids["dead"]
    c.call("FAIL", id=dead["id"], error="fatal")
    # Queue state and crons.
    c.call("PAUSE", queue="beta")
    c.call("RATELIMIT", queue="gamma.x", limit=100)
    c.call("SETCONCURRENCY", queue="alpha", limit=3)
    c.call("CRON", name="nightly", queue="alpha", data={"r": 1}, schedule="0 0 3 * * *")
    c.call("CRON", name="often", queue="beta", data=None, repeat_every=3_600_000, limit=10)
    c.call("KVSET", key="config", value={"a": 1})
    return ids


def snapshot(c: BlockingClient, ids: dict[str, Any]) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for q in [*QUEUES, "dep-dst", "parents", "kids-a", "kids-b"]:
        counts = c.call("GETJOBCOUNTS", queue=q)
        snap[f"counts:{q}"] = {k: counts[k] for k in ("waiting", "delayed", "completed", "failed")}
        snap[f"paused:{q}"] = c.call("ISPAUSED", queue=q)["paused"]
    for name, job_id in ids.items():
        reply = c.call("GETJOB", id=job_id)
        job = reply["job"]
        if job is not None:
            job = {k: v for k, v in job.items() if k not in ("started_at", "last_heartbeat")}
        snap[f"job:{name}"] = (reply["state"], job)
    snap["result"] = c.call("GETRESULT", id=ids["completed"])["result"]
    snap["logs"] = [e["message"] for e in c.call("GETLOGS", id=ids["failed_once"])["logs"]]
    snap["custom"] = c.call("GETJOBBYCUSTOMID", job_id="order-42")["job"]["id"]
    snap["crons"] = sorted(
        (cr["name"], cr["queue"], cr["next_run"], cr["executions"], cr["limit"])
        for cr in c.call("CRONLIST")["crons"]
    )
    snap["dlq"] = [j["id"] for j in c.call("DLQ", queue="gamma.x")["jobs"]]
    snap["kv"] = c.call("KVGET", key="config")["value"]
    return snap


@pytest.mark.parametrize("procs_after", [2, 1])
def test_restart_keeps_everything(tmp_path: Path, procs_after: int) -> None:
    srv = ServerProcess(tmp_path / "data", shard_procs=2, storage="embedded").start()
    try:
        with srv.client() as c:
            ids = fill(c)
            before = snapshot(c, ids)
            seen_ids = {c.call("PUSH", queue="seq", data=i)["id"] for i in range(20)}
    finally:
        assert srv.stop() == 0
    # The active job comes back as waiting (attempts kept): adjust the expectation.
    state, job = before["job:failed_once"]
    assert state == "active"
    before["job:failed_once"] = ("waiting", job)
    before["counts:delta-1"]["waiting"] += 1

    srv = ServerProcess(tmp_path / "data", shard_procs=procs_after, storage="embedded").start()
    try:
        with srv.client() as c:
            after = snapshot(c, ids)
            assert after == before
            assert after["job:failed_once"][1]["attempts"] == 1
            # Unique key and custom id are still held; ids are never reused.
            with pytest.raises(Exception, match="Duplicate job with key: only-one"):
                c.call("PUSH", queue="beta", data="again", unique_key="only-one")
            assert c.call("PUSH", queue="beta", data="c2", job_id="order-42")["id"] == ids["custom"]
            new_ids = {c.call("PUSH", queue="seq", data=i)["id"] for i in range(20)}
            assert not new_ids & seen_ids
            assert min(new_ids) > max(seen_ids) - 32 * 20  # counters resumed, not reset
            # The dependency and the flow still resolve after the restart.
            src = c.call("PULL", queue="dep-src", timeout=2000)["job"]
            c.call("ACK", id=src["id"])
            assert c.call("PULL", queue="dep-dst", timeout=5000)["job"]["id"] == ids["dependent"]
            for q in ("kids-a", "kids-b"):
                kid = c.call("PULL", queue=q, timeout=2000)["job"]
                c.call("ACK", id=kid["id"])
            parent = c.call("PULL", queue="parents", timeout=5000)["job"]
            assert parent["id"] == ids["flow_parent"]
    finally:
        assert srv.stop() == 0
