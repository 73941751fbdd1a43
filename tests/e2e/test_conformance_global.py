"""Protocol conformance through the real server: what spans both shard processes.

Global commands the acceptor scatters and merges (GETJOBS without queue, STATS, METRICS,
LISTQUEUES, CRONLIST, GETJOBBYCUSTOMID), flows (§2.10) whose children live on both processes,
and dependencies on a job owned by the other process. Every test starts from an empty server
(the `wire` fixture obliterates what earlier tests left), so merged answers are checked
exactly. See `test_conformance` for the conventions (★ / §6.6 / xfail policy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_conformance import (
    JOB_KEYS,
    METRICS_KEYS,
    QUEUE_METRICS_KEYS,
    STATS_KEYS,
    STATS_QUEUE_KEYS,
    Wire,
    check_job,
    check_queue_info,
    is_int,
    process_of_id,
    queue_on,
    serve_module,
)
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_module(tmp_path_factory, "conformance-global")


def reset(wire: Wire) -> None:
    """Obliterate every queue and cron, so merged answers can be compared exactly."""
    for info in wire.ok("LISTQUEUES")["queues"]:
        wire.ok("OBLITERATE", queue=info["name"])
    for cron in wire.ok("CRONLIST")["crons"]:
        wire.ok("CRONDELETE", name=cron["name"])
    assert wire.ok("GETJOBS") == {"ok": True, "jobs": [], "total": 0}, "server not empty"


@pytest.fixture
def wire(srv: ServerProcess) -> Iterator[Wire]:
    w = Wire(srv.connect())
    try:
        reset(w)
        yield w
    finally:
        w.close()


def ids_of(reply: dict[str, Any]) -> list[int]:
    return [j["id"] for j in reply["jobs"]]


# == GETJOBS without queue ========================================================================


def test_getjobs_without_queue_merges_both_processes(wire: Wire) -> None:
    q0, q1 = queue_on(0, "gj"), queue_on(1, "gj")
    ids = wire.ok("PUSHB", queue=q0, jobs=[{"data": i} for i in range(4)])["ids"]
    ids += wire.ok("PUSHB", queue=q1, jobs=[{"data": i} for i in range(5)])["ids"]
    delayed = wire.push(q1, "later", delay=3_600_000)
    active = [wire.pull(q0)["id"], wire.pull(q1)["id"]]
    done = wire.pull(q1)["id"]
    wire.ok("ACK", id=done)
    everything = sorted([*ids, delayed], reverse=True)
    reply = wire.ok("GETJOBS")
    assert list(reply) == ["ok", "jobs", "total"]
    assert ids_of(reply) == everything  # newest id first over both processes
    assert reply["total"] == len(everything)
    for job in reply["jobs"]:
        check_job(job, with_state=True)
    assert {process_of_id(i) for i in ids_of(reply)} == {0, 1}
    assert ids_of(wire.ok("GETJOBS", state="active")) == sorted(active, reverse=True)
    assert ids_of(wire.ok("GETJOBS", state="delayed")) == [delayed]
    completed = wire.ok("GETJOBS", state="completed")["jobs"]
    assert ids_of({"jobs": completed}) == [done]
    # ⚠ fixed (§3.1): upstream never sets completed_at
    assert completed[0]["completed_at"] >= completed[0]["started_at"] > 0
    waiting = wire.ok("GETJOBS", state="waiting")
    assert waiting["total"] == len(everything) - 4


def test_getjobs_without_queue_pagination(wire: Wire) -> None:
    q0, q1 = queue_on(0, "gjp"), queue_on(1, "gjp")
    ids = wire.ok("PUSHB", queue=q0, jobs=[{} for _ in range(30)])["ids"]
    ids += wire.ok("PUSHB", queue=q1, jobs=[{} for _ in range(25)])["ids"]
    everything = sorted(ids, reverse=True)
    pages: list[int] = []
    for offset in range(0, 60, 7):
        page = wire.ok("GETJOBS", limit=7, offset=offset)
        assert page["total"] == 55  # counted before paging
        assert ids_of(page) == everything[offset : offset + 7]
        pages += ids_of(page)
    assert pages == everything
    assert wire.ok("GETJOBS", offset=100) == {"ok": True, "jobs": [], "total": 55}
    assert wire.ok("GETJOBS", limit=0)["jobs"] == []


def test_getjobs_without_queue_limit_zero(wire: Wire) -> None:
    """§2.5: `limit` 0 asks for no job (upstream: skip(offset).take(0)); the queue-addressed
    GETJOBS already answers so."""
    q0, q1 = queue_on(0, "gj0"), queue_on(1, "gj0")
    wire.ok("PUSHB", queue=q0, jobs=[{} for _ in range(10)])
    wire.ok("PUSHB", queue=q1, jobs=[{} for _ in range(10)])
    assert wire.ok("GETJOBS", queue=q0, offset=5, limit=0) == {"ok": True, "jobs": [], "total": 10}
    assert wire.ok("GETJOBS", offset=5, limit=0) == {"ok": True, "jobs": [], "total": 20}


def test_getjobs_without_queue_pages_past_1000(wire: Wire) -> None:
    """§2.5: `limit` is capped at 1000, `offset` is not; the merged order must hold at any
    offset. Here one process holds 1 500 jobs."""
    q0, q1 = queue_on(0, "gjdeep"), queue_on(1, "gjdeep")
    ids = wire.ok("PUSHB", queue=q0, jobs=[{} for _ in range(1000)])["ids"]
    ids += wire.ok("PUSHB", queue=q0, jobs=[{} for _ in range(500)])["ids"]
    ids += wire.ok("PUSHB", queue=q1, jobs=[{} for _ in range(100)])["ids"]
    everything = sorted(ids, reverse=True)
    page = wire.ok("GETJOBS", offset=1000, limit=100)
    assert page["total"] == 1600
    assert ids_of(page) == everything[1000:1100]
    assert ids_of(wire.ok("GETJOBS", offset=1400, limit=200)) == everything[1400:1600]


# == GETJOBBYCUSTOMID across processes ===========================================================


def test_getjobbycustomid_scatters_to_both_processes(wire: Wire) -> None:
    """Our choice (DESIGN.md): custom ids are per queue, so one custom id may name a live job
    in a queue of each process; GETJOBBYCUSTOMID then answers one of them."""
    q0, q1 = queue_on(0, "cid"), queue_on(1, "cid")
    only1 = wire.push(q1, "one", job_id="only-on-1")
    reply = wire.ok("GETJOBBYCUSTOMID", job_id="only-on-1")
    check_job(reply["job"], id=only1)
    a = wire.push(q0, "a", job_id="shared")
    b = wire.push(q1, "b", job_id="shared")
    assert a != b
    reply = wire.ok("GETJOBBYCUSTOMID", customId="shared")
    assert reply["job"]["id"] in (a, b)
    assert reply["state"] == "waiting"
    wire.ok("CANCEL", id=reply["job"]["id"])
    survivor = b if reply["job"]["id"] == a else a
    assert wire.ok("GETJOBBYCUSTOMID", job_id="shared")["job"]["id"] == survivor


# == merged monitoring ============================================================================


def build_two_queues(wire: Wire) -> tuple[str, str]:
    """q0 (process 0): 3 waiting, 1 active, 1 completed, 1 DLQ. q1 (process 1): 2 waiting,
    1 delayed, paused, rate limited."""
    q0, q1 = queue_on(0, "mon"), queue_on(1, "mon")
    wire.ok("PUSHB", queue=q0, jobs=[{"data": i, "max_attempts": 1} for i in range(6)])
    done = wire.pull(q0)["id"]
    wire.ok("ACK", id=done)
    dead = wire.pull(q0)["id"]
    wire.ok("FAIL", id=dead)
    wire.pull(q0)
    wire.ok("PUSHB", queue=q1, jobs=[{"data": 1}, {"data": 2}, {"data": 3, "delay": 3_600_000}])
    wire.ok("PAUSE", queue=q1)
    wire.ok("RATELIMIT", queue=q1, limit=9)
    return q0, q1


def test_stats_merged(wire: Wire) -> None:
    """Flat global counters (upstream) plus ★ the per-queue `queues` map Python/Go read."""
    q0, q1 = build_two_queues(wire)
    reply = wire.ok("STATS")
    assert set(reply) == STATS_KEYS | {"queues"}
    assert {k: reply[k] for k in STATS_KEYS} == {
        "ok": True, "queued": 5, "processing": 1, "delayed": 1, "dlq": 1, "completed": 1,
    }  # fmt: skip
    assert set(reply["queues"]) == {q0, q1}
    for entry in reply["queues"].values():
        assert set(entry) == STATS_QUEUE_KEYS
    assert reply["queues"][q0] == {
        "waiting": 3, "active": 1, "completed": 1, "failed": 1, "delayed": 0, "paused": False,
    }  # fmt: skip
    assert reply["queues"][q1] == {
        "waiting": 2, "active": 0, "completed": 0, "failed": 0, "delayed": 1, "paused": True,
    }  # fmt: skip


def test_metrics_merged(wire: Wire) -> None:
    before = wire.ok("METRICS")["metrics"]
    q0, q1 = build_two_queues(wire)
    reply = wire.ok("METRICS")
    assert set(reply) == {"ok", "metrics"}
    metrics = reply["metrics"]
    assert set(metrics) == METRICS_KEYS
    assert metrics["total_pushed"] - before["total_pushed"] == 9
    assert metrics["total_completed"] - before["total_completed"] == 1
    assert metrics["total_failed"] - before["total_failed"] == 1
    assert isinstance(metrics["jobs_per_second"], float)
    assert isinstance(metrics["avg_latency_ms"], float)
    assert metrics["avg_latency_ms"] >= 0
    by_name = {m["name"]: m for m in metrics["queues"]}
    assert set(by_name) == {q0, q1}
    for entry in by_name.values():
        assert set(entry) == QUEUE_METRICS_KEYS
    # pending = waiting + delayed (§3.5)
    assert by_name[q0] == {"name": q0, "pending": 3, "processing": 1, "dlq": 1, "rate_limit": None}
    assert by_name[q1] == {"name": q1, "pending": 3, "processing": 0, "dlq": 0, "rate_limit": 9}


def test_listqueues_merged(wire: Wire) -> None:
    q0, q1 = build_two_queues(wire)
    infos = {q["name"]: q for q in wire.ok("LISTQUEUES")["queues"]}
    assert set(infos) == {q0, q1}
    check_queue_info(
        infos[q0], pending=3, processing=1, completed=1, delayed=0, dlq=1, paused=False,
        rate_limit=None, concurrency_limit=None,
    )  # fmt: skip
    check_queue_info(
        infos[q1], pending=2, processing=0, completed=0, delayed=1, dlq=0, paused=True,
        rate_limit=9, concurrency_limit=None,
    )  # fmt: skip


def test_cronlist_merged(wire: Wire) -> None:
    q0, q1 = queue_on(0, "cronm"), queue_on(1, "cronm")
    wire.ok("CRON", name="m0", queue=q0, data=0, repeat_every=3_600_000)
    wire.ok("CRON", name="m1", queue=q1, data=1, schedule="0 0 0 1 1 *")
    crons = {c["name"]: c for c in wire.ok("CRONLIST")["crons"]}
    assert set(crons) == {"m0", "m1"}
    assert (crons["m0"]["queue"], crons["m1"]["queue"]) == (q0, q1)
    assert wire.ok("CRONDELETE", name="m1") == {"ok": True}  # scattered delete finds it
    assert [c["name"] for c in wire.ok("CRONLIST")["crons"]] == ["m0"]


# == §2.10: flows =================================================================================


def start_flow(wire: Wire, parent_q: str, child_qs: list[str]) -> tuple[int, list[int]]:
    reply = wire.ok(
        "FLOW",
        queue=parent_q,
        data={"parent": True},
        priority=2,
        children=[{"queue": q, "data": {"child": i}} for i, q in enumerate(child_qs)],
    )
    assert list(reply) == ["ok", "parent_id", "children_ids"]
    assert is_int(reply["parent_id"])
    assert len(reply["children_ids"]) == len(child_qs)
    return reply["parent_id"], reply["children_ids"]


def test_flow_children_on_both_processes(wire: Wire) -> None:
    pq, c0, c1 = queue_on(0, "flowp"), queue_on(0, "flowc"), queue_on(1, "flowc")
    parent, children = start_flow(wire, pq, [c0, c1])
    assert [process_of_id(c) for c in children] == [0, 1]
    # Our choice (§3.2): a flow parent is "waiting-children" (upstream: "waitingparent").
    got = wire.ok("GETJOB", id=parent)
    assert got["state"] == "waiting-children"
    check_job(got["job"], data={"parent": True}, priority=2, children_ids=children)
    for child, q in zip(children, (c0, c1), strict=True):
        check_job(wire.job(child), queue=q, parent_id=parent, max_attempts=0)
        assert wire.state(child) == "waiting"
    # waitingparent / waiting-children are both accepted as filters
    assert ids_of(wire.ok("GETJOBS", queue=pq, state="waitingparent")) == [parent]
    assert ids_of(wire.ok("GETJOBS", state="waiting-children")) == [parent]

    reply = wire.ok("GETCHILDREN", parent_id=parent)
    assert set(reply) == {"ok", "parent_id", "children", "children_ids", "completed", "total"}
    assert reply["parent_id"] == parent
    assert reply["children_ids"] == children
    assert (reply["completed"], reply["total"]) == (0, 2)
    assert sorted(j["id"] for j in reply["children"]) == sorted(children)

    assert wire.pull(c1)["id"] == children[1]
    wire.ok("ACK", id=children[1], result="r1")  # the other process tells the parent's
    reply = wire.ok("GETCHILDREN", parent_id=parent)
    assert (reply["completed"], reply["total"]) == (1, 2)
    assert [j["id"] for j in reply["children"]] == [children[0]]  # completed ones omitted
    assert wire.state(parent) == "waiting-children"
    wire.pull(c0)
    wire.ok("ACK", id=children[0])
    assert wire.state(parent) == "waiting"
    job = wire.pull(pq)
    check_job(job, id=parent, children_ids=children, children_completed=2)
    logs = [e["message"] for e in wire.ok("GETLOGS", id=parent)["logs"]]
    assert logs == ["All children completed, parent job ready"]


def test_flow_parent_released_by_ackb(wire: Wire) -> None:
    """§6.6 fix: upstream's ACKB never notifies flow parents (they wait forever)."""
    pq = queue_on(1, "flowb")
    parent, children = start_flow(wire, pq, [queue_on(0, "flowbc"), queue_on(1, "flowbc")])
    for q in (queue_on(0, "flowbc"), queue_on(1, "flowbc")):
        wire.pull(q)
    assert wire.ok("ACKB", ids=children)["count"] == 2
    assert wire.state(parent) == "waiting"


def test_flow_child_options_and_errors(wire: Wire) -> None:
    pq, cq = queue_on(0, "flowo"), queue_on(1, "flowo")
    reply = wire.ok(
        "FLOW", queue=pq, data=None,
        children=[{"queue": cq, "data": 1, "priority": 7, "delay": 3_600_000}],
    )  # fmt: skip
    (child,) = reply["children_ids"]
    job = check_job(wire.job(child), priority=7, parent_id=reply["parent_id"])
    assert job["run_at"] == job["created_at"] + 3_600_000
    assert wire.state(child) == "delayed"
    assert wire.error("FLOW", queue=pq, data=1, children=[]) == "Flow must have at least one child"
    assert wire.request("FLOW", queue=pq, children=[{"queue": cq}])["error"].startswith("Invalid: ")
    assert wire.error("GETCHILDREN", parent_id=child) == f"Parent job {child} not found"
    assert wire.error("GETCHILDREN", parent_id=9_999_999) == "Parent job 9999999 not found"


def test_getchildren_children_are_job_objects(wire: Wire) -> None:
    parent, _ = start_flow(wire, queue_on(0, "flowk"), [queue_on(1, "flowk")])
    (child,) = wire.ok("GETCHILDREN", parent_id=parent)["children"]
    assert list(child) == JOB_KEYS


def test_failed_flow_leaves_nothing_behind(wire: Wire) -> None:
    """A command that answers ok:false must have had no effect. (Upstream does not validate
    child queue names at all, §2.10 ⚠; refusing the flow is allowed, half-creating it is not.)"""
    pq, cq = queue_on(0, "flowbad"), queue_on(1, "flowbad")
    text = wire.error("FLOW", queue=pq, data=1, children=[{"queue": cq}, {"queue": "bad name!"}])
    assert text.startswith("Queue name must contain only")
    assert wire.ok("GETJOBS") == {"ok": True, "jobs": [], "total": 0}


# == dependencies on a job of the other process ===================================================


def test_depends_on_job_of_other_process(wire: Wire) -> None:
    q0, q1 = queue_on(0, "dep"), queue_on(1, "dep")
    dep = wire.push(q0, "first")
    dependent = wire.push(q1, "second", depends_on=[dep])
    assert process_of_id(dep) != process_of_id(dependent)
    # Our choice (§3.2): "waiting-children" (upstream: "waitingchildren").
    got = wire.ok("GETJOB", id=dependent)
    assert got["state"] == "waiting-children"
    check_job(got["job"], depends_on=[dep])
    assert wire.ok("PULL", queue=q1, timeout=0)["job"] is None
    wire.pull(q0)
    wire.ok("ACK", id=dep)
    # The release travels shard process -> acceptor -> shard process ahead of the ACK's reply,
    # so the next request already sees it.
    assert wire.state(dependent) == "waiting"
    job = wire.ok("PULL", queue=q1, timeout=5000)["job"]
    check_job(job, id=dependent)


def test_depends_on_job_of_same_shard(wire: Wire) -> None:
    """Within one shard the release is synchronous, as upstream: no waiting-children window."""
    queue = queue_on(0, "depsame")
    dep = wire.push(queue, "first")
    dependent = wire.push(queue, "second", depends_on=[dep])
    assert wire.state(dependent) == "waiting-children"
    wire.pull(queue)
    wire.ok("ACK", id=dep)
    assert wire.state(dependent) == "waiting"
    again = wire.push(queue, "third", depends_on=[dep])  # already completed: waiting at once
    assert wire.state(again) == "waiting"


def test_depends_on_completed_job_of_other_process(wire: Wire) -> None:
    """Dependency already completed: the job becomes waiting. (Across processes this takes
    one round trip through the acceptor, so it is awaited with a blocking PULL.)"""
    q0, q1 = queue_on(0, "depdone"), queue_on(1, "depdone")
    dep = wire.push(q1, "first")
    wire.pull(q1)
    wire.ok("ACK", id=dep)
    dependent = wire.push(q0, "second", depends_on=[dep])
    assert wire.ok("PULL", queue=q0, timeout=5000)["job"]["id"] == dependent


def test_depends_on_released_by_ackb_and_several_dependencies(wire: Wire) -> None:
    q0, q1 = queue_on(0, "depb"), queue_on(1, "depb")
    d0, d1 = wire.push(q0, 0), wire.push(q1, 1)
    dependent = wire.push(q0, "both", depends_on=[d0, d1])
    assert wire.pull(q0)["id"] == d0
    wire.pull(q1)
    wire.ok("ACKB", ids=[d1])
    assert wire.state(dependent) == "waiting-children"  # still waits for d0
    wire.ok("ACKB", ids=[d0])
    assert wire.ok("PULL", queue=q0, timeout=5000)["job"]["id"] == dependent
