"""Protocol conformance through the real server: query (§2.5) and job management (§2.6).

See `test_conformance` for the conventions (helpers, ★ / §6.6 / xfail policy).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_conformance import (
    COUNTS_KEYS,
    Wire,
    check_job,
    now_ms,
    process_of_id,
    queue_on,
    serve_module,
)
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_module(tmp_path_factory, "conformance-jobs")


# == §2.5: query ==================================================================================


def test_getjob_states(wire: Wire) -> None:
    queue = queue_on(0, "getjob")
    waiting = wire.push(queue, 1)
    delayed = wire.push(queue, 2, delay=3_600_000)
    for job_id, state in ((waiting, "waiting"), (delayed, "delayed")):
        reply = wire.ok("GETJOB", id=job_id)
        assert list(reply) == ["ok", "job", "state"]
        assert reply["state"] == state
        check_job(reply["job"], id=job_id)
    wire.pull(queue)
    assert wire.ok("GETJOB", id=waiting)["state"] == "active"
    wire.ok("ACK", id=waiting)
    # completed: no data kept
    assert wire.ok("GETJOB", id=waiting) == {"ok": True, "job": None, "state": "completed"}
    assert wire.ok("GETJOB", id=123_456_789) == {"ok": True, "job": None, "state": "unknown"}


def test_getstate(wire: Wire) -> None:
    queue = queue_on(1, "getstate")
    job_id = wire.push(queue, 1)
    assert wire.ok("GETSTATE", id=job_id) == {"ok": True, "id": job_id, "state": "waiting"}
    assert wire.ok("GETSTATE", id=77_777_777) == {"ok": True, "id": 77_777_777, "state": "unknown"}


def test_getresult(wire: Wire) -> None:
    queue = queue_on(0, "getresult")
    job_id = wire.push(queue, 1)
    assert wire.ok("GETRESULT", id=job_id) == {"ok": True, "id": job_id, "result": None}
    wire.pull(queue)
    wire.ok("ACK", id=job_id, result={"answer": [42]})
    assert wire.ok("GETRESULT", id=job_id) == {"ok": True, "id": job_id, "result": {"answer": [42]}}
    assert wire.ok("GETRESULT", id=5) == {"ok": True, "id": 5, "result": None}


def test_getjobbycustomid(wire: Wire) -> None:
    """`job_id` field, ★ `customId` alias (§6.3); found in whichever shard process holds it."""
    for proc in (0, 1):
        queue = queue_on(proc, "bycustom")
        job_id = wire.push(queue, proc, job_id=f"cust-{proc}")
        for field in ("job_id", "customId"):
            reply = wire.ok("GETJOBBYCUSTOMID", **{field: f"cust-{proc}"})
            assert list(reply) == ["ok", "job", "state"]
            assert reply["state"] == "waiting"
            check_job(reply["job"], id=job_id, custom_id=f"cust-{proc}")
        wire.pull(queue)
        assert wire.ok("GETJOBBYCUSTOMID", job_id=f"cust-{proc}")["state"] == "active"
        wire.ok("ACK", id=job_id)
        # completed -> job null, state unknown
        assert wire.ok("GETJOBBYCUSTOMID", job_id=f"cust-{proc}") == {
            "ok": True,
            "job": None,
            "state": "unknown",
        }
    assert wire.ok("GETJOBBYCUSTOMID", job_id="nope") == {
        "ok": True,
        "job": None,
        "state": "unknown",
    }
    assert wire.request("GETJOBBYCUSTOMID")["error"].startswith("Invalid: ")


def test_getjobsbatch_across_processes_in_request_order(wire: Wire) -> None:
    q0, q1 = queue_on(0, "batch"), queue_on(1, "batch")
    a, b, c = wire.push(q0, "a"), wire.push(q1, "b"), wire.push(q0, "c")
    done = wire.push(q1, "done")
    wire.pull(q1)
    wire.pull(q1)
    wire.ok("ACK", id=done)
    assert {process_of_id(i) for i in (a, b)} == {0, 1}
    reply = wire.ok("GETJOBSBATCH", ids=[c, 999_999, b, done, a, b])
    assert set(reply) == {"ok", "jobs"}
    # request order; completed and unknown ids omitted; JobWithState items
    assert [j["id"] for j in reply["jobs"]] == [c, b, a, b]
    states = [check_job(j, with_state=True)["state"] for j in reply["jobs"]]
    assert states == ["waiting", "active", "waiting", "active"]
    assert wire.ok("GETJOBSBATCH", ids=[]) == {"ok": True, "jobs": []}


def test_getjobs_with_queue(wire: Wire) -> None:
    queue = queue_on(1, "getjobs")
    ids = wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(6)])["ids"]
    delayed = wire.push(queue, "later", delay=3_600_000)
    wire.pull(queue)  # ids[0] active
    reply = wire.ok("GETJOBS", queue=queue)
    assert list(reply) == ["ok", "jobs", "total"]
    assert reply["total"] == 7
    assert [j["id"] for j in reply["jobs"]] == sorted([*ids, delayed], reverse=True)
    for j in reply["jobs"]:
        check_job(j, with_state=True)
    page = wire.ok("GETJOBS", queue=queue, limit=2, offset=3)
    assert [j["id"] for j in page["jobs"]] == sorted([*ids, delayed], reverse=True)[3:5]
    assert page["total"] == 7  # counted before paging
    by_state = {
        "waiting": sorted(ids[1:], reverse=True),
        "DELAYED": [delayed],  # case-insensitive
        "active": [ids[0]],
        "failed": [],
        "completed": [],
        "waiting-children": [],
    }
    for state, expected in by_state.items():
        got = wire.ok("GETJOBS", queue=queue, state=state)
        assert [j["id"] for j in got["jobs"]] == expected, state
        assert got["total"] == len(expected)
    # any other string means "no filter" (§2.5)
    assert wire.ok("GETJOBS", queue=queue, state="bogus")["total"] == 7
    assert wire.ok("GETJOBS", queue="no-such-queue") == {"ok": True, "jobs": [], "total": 0}


def test_getjobs_limit_capped_at_1000(wire: Wire) -> None:
    queue = queue_on(0, "getjobs-cap")
    wire.ok("PUSHB", queue=queue, jobs=[{} for _ in range(1000)])
    wire.ok("PUSHB", queue=queue, jobs=[{} for _ in range(5)])
    reply = wire.ok("GETJOBS", queue=queue, limit=5000)
    assert len(reply["jobs"]) == 1000
    assert reply["total"] == 1005


def test_getjobcounts_and_count(wire: Wire) -> None:
    """GETJOBCOUNTS is flat (upstream) plus ★ `counts` (what Python/Go read); COUNT is
    waiting + delayed."""
    queue = queue_on(1, "counts")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(4)])
    wire.push(queue, "d", delay=3_600_000)
    dead = wire.push(queue, "x", max_attempts=1, priority=9)
    done = wire.push(queue, "y", priority=8)
    wire.pull(queue)
    wire.ok("FAIL", id=dead)
    wire.pull(queue)
    wire.ok("ACK", id=done)
    wire.pull(queue)  # one active
    reply = wire.ok("GETJOBCOUNTS", queue=queue)
    expected = {"waiting": 3, "active": 1, "delayed": 1, "completed": 1, "failed": 1}
    assert set(reply) == {"ok", "counts"} | COUNTS_KEYS
    assert {k: reply[k] for k in COUNTS_KEYS} == expected
    assert reply["counts"] == expected
    assert wire.ok("COUNT", queue=queue) == {"ok": True, "count": 4}
    empty = {"waiting": 0, "active": 0, "delayed": 0, "completed": 0, "failed": 0}
    assert wire.ok("GETJOBCOUNTS", queue="no-such") == {"ok": True, **empty, "counts": empty}
    assert wire.ok("COUNT", queue="no-such") == {"ok": True, "count": 0}


def test_waitjob_immediate_answers(wire: Wire) -> None:
    queue = queue_on(0, "waitjob")
    with_result = wire.push(queue, 1)
    no_result = wire.push(queue, 2)
    dead = wire.push(queue, 3, max_attempts=1)
    for job_id, result in ((with_result, {"r": 1}), (no_result, None)):
        wire.pull(queue)
        wire.ok("ACK", id=job_id, result=result)
    wire.pull(queue)
    wire.ok("FAIL", id=dead)
    assert wire.ok("WAITJOB", id=with_result) == {"ok": True, "result": {"r": 1}}
    assert wire.ok("WAITJOB", id=no_result) == {"ok": True}  # the key is omitted
    assert wire.error("WAITJOB", id=dead) == "Job failed"
    assert wire.error("WAITJOB", id=424_242) == "Job not found"
    pending = wire.push(queue, 4)
    assert wire.error("WAITJOB", id=pending, timeout=50) == (
        f"Timeout waiting for job {pending} after 50ms"
    )


def test_waitjob_resolved_by_ack(wire: Wire, other: Wire) -> None:
    queue = queue_on(1, "waitjob-ack")
    job_id = wire.push(queue, 1)
    wire.send({"cmd": "WAITJOB", "id": job_id, "timeout": 10_000, "reqId": "w"})
    assert wire.nothing_pending(0.1)
    other.pull(queue)
    other.ok("ACK", id=job_id, result="fine")
    assert wire.read() == {"reqId": "w", "ok": True, "result": "fine"}


def test_waitjob_resolved_by_final_fail_and_cancel(wire: Wire, other: Wire) -> None:
    """§6.6 (deliberate): upstream answers {"ok":true} with no result when the job fails or is
    cancelled while waited on; ours answers the errors WAITJOB gives when asked afterwards."""
    queue = queue_on(0, "waitjob-fail")
    failing = wire.push(queue, 1, max_attempts=1)
    cancelled = wire.push(queue, 2)
    wire.send(
        {"cmd": "WAITJOB", "id": failing, "timeout": 10_000, "reqId": "f"},
        {"cmd": "WAITJOB", "id": cancelled, "timeout": 10_000, "reqId": "c"},
    )
    assert wire.nothing_pending(0.1)
    other.pull(queue)
    other.ok("FAIL", id=failing)
    assert wire.read() == {"reqId": "f", "ok": False, "error": "Job failed"}
    other.ok("CANCEL", id=cancelled)
    assert wire.read() == {"reqId": "c", "ok": False, "error": "Job not found"}


# == §2.6: job management =========================================================================


def test_cancel(wire: Wire) -> None:
    queue = queue_on(1, "cancel")
    waiting = wire.push(queue, 1, unique_key="cu")
    assert wire.ok("CANCEL", id=waiting) == {"ok": True}
    assert wire.state(waiting) == "unknown"
    wire.push(queue, 2, unique_key="cu")  # unique key released
    active = wire.pull(queue)["id"]
    wire.ok("CANCEL", id=active)
    assert wire.error("ACK", id=active) == f"Job {active} not found"
    delayed = wire.push(queue, 3, delay=3_600_000)
    wire.ok("CANCEL", id=delayed)
    done = wire.push(queue, 4)
    wire.pull(queue)
    wire.ok("ACK", id=done)
    assert wire.error("CANCEL", id=done) == (
        f"Job {done} cannot be cancelled (already completed/failed)"
    )
    dead = wire.push(queue, 5, max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=dead)
    assert wire.error("CANCEL", id=dead) == (
        f"Job {dead} cannot be cancelled (already completed/failed)"
    )
    assert wire.error("CANCEL", id=31_337) == "Job 31337 not found"


def test_progress_and_getprogress(wire: Wire) -> None:
    queue = queue_on(0, "progress")
    job_id = wire.push(queue, 1)
    assert wire.error("PROGRESS", id=job_id, progress=5) == f"Job {job_id} not found in processing"
    assert wire.error("GETPROGRESS", id=job_id) == f"Job {job_id} not found"
    wire.pull(queue)
    assert wire.ok("PROGRESS", id=job_id, progress=40, message="half") == {"ok": True}
    reply = wire.ok("GETPROGRESS", id=job_id)
    assert reply == {"ok": True, "progress": {"id": job_id, "progress": 40, "message": "half"}}
    check_job(wire.job(job_id), progress=40, progress_msg="half")
    wire.ok("PROGRESS", id=job_id, progress=250)  # u8, stored as min(p, 100)
    progress = wire.ok("GETPROGRESS", id=job_id)["progress"]
    assert progress == {"id": job_id, "progress": 100, "message": None}  # absent message clears
    wire.ok("PROGRESS", id=job_id, progress=42.7)  # ★ fractional progress truncated (TS)
    assert wire.ok("GETPROGRESS", id=job_id)["progress"]["progress"] == 42
    assert wire.request("PROGRESS", id=job_id, progress=256)["error"].startswith("Invalid: ")
    assert wire.request("PROGRESS", id=job_id, progress=-1)["error"].startswith("Invalid: ")


def test_updatejob_and_update_alias(wire: Wire) -> None:
    """UPDATEJOB, and ★ `UPDATE` (what Python and Go send, §2.14)."""
    queue = queue_on(1, "update")
    job_id = wire.push(queue, "v1")
    assert wire.ok("UPDATEJOB", id=job_id, data={"v": 2}) == {"ok": True}
    assert wire.job(job_id)["data"] == {"v": 2}
    wire.pull(queue)
    assert wire.ok("UPDATE", id=job_id, data="v3") == {"ok": True}  # active
    assert wire.job(job_id)["data"] == "v3"
    wire.ok("UPDATEJOB", id=job_id, data=None)  # data is required but may be null
    assert wire.job(job_id)["data"] is None
    assert wire.request("UPDATEJOB", id=job_id)["error"].startswith("Invalid: ")
    wire.ok("DISCARD", id=job_id)
    wire.ok("UPDATEJOB", id=job_id, data="in dlq")
    assert wire.job(job_id)["data"] == "in dlq"
    assert wire.error("UPDATEJOB", id=8_888_888, data=1) == "Job 8888888 not found"


def test_changepriority(wire: Wire) -> None:
    queue = queue_on(0, "prio")
    a = wire.push(queue, "a", priority=1)
    b = wire.push(queue, "b", priority=2)
    assert wire.ok("CHANGEPRIORITY", id=a, priority=10) == {"ok": True}
    assert wire.job(a)["priority"] == 10
    assert wire.pull(queue)["id"] == a  # re-sorted
    wire.ok("CHANGEPRIORITY", id=a, priority=-3)  # active: allowed
    assert wire.job(a)["priority"] == -3
    wire.ok("ACK", id=a)
    assert wire.error("CHANGEPRIORITY", id=a, priority=1) == (
        f"Job {a} not found or cannot change priority"
    )
    assert wire.error("CHANGEPRIORITY", id=1_000_001, priority=1) == (
        "Job 1000001 not found or cannot change priority"
    )
    assert wire.job(b)["priority"] == 2


def test_movetodelayed(wire: Wire) -> None:
    queue = queue_on(1, "mtd")
    job_id = wire.push(queue, 1)
    assert wire.error("MOVETODELAYED", id=job_id, delay=1000) == f"Job {job_id} not in processing"
    wire.pull(queue)
    wire.ok("PROGRESS", id=job_id, progress=30, message="m")
    before = now_ms()
    assert wire.ok("MOVETODELAYED", id=job_id, delay=600_000) == {"ok": True}
    after = now_ms()
    job = check_job(wire.job(job_id), started_at=0, progress=0, progress_msg=None, attempts=0)
    assert before + 600_000 <= job["run_at"] <= after + 600_000
    assert wire.state(job_id) == "delayed"
    assert wire.request("MOVETODELAYED", id=job_id)["error"].startswith("Invalid: ")


def test_promote(wire: Wire) -> None:
    queue = queue_on(0, "promote")
    job_id = wire.push(queue, 1, delay=3_600_000)
    before = now_ms()
    assert wire.ok("PROMOTE", id=job_id) == {"ok": True}
    assert before <= wire.job(job_id)["run_at"] <= now_ms()
    assert wire.state(job_id) == "waiting"
    assert wire.error("PROMOTE", id=job_id) == f"Job {job_id} is not delayed"
    assert wire.error("PROMOTE", id=2_000_002) == "Job 2000002 not found or not in delayed state"
    assert wire.pull(queue)["id"] == job_id


def test_discard(wire: Wire) -> None:
    queue = queue_on(1, "discard")
    waiting = wire.push(queue, 1)
    assert wire.ok("DISCARD", id=waiting) == {"ok": True}
    assert wire.state(waiting) == "failed"
    active = wire.push(queue, 2)
    wire.pull(queue)
    wire.ok("DISCARD", id=active)
    assert wire.state(active) == "failed"
    assert wire.job(active)["attempts"] == 0  # no attempt increment
    assert [j["id"] for j in wire.ok("DLQ", queue=queue)["jobs"]] == [waiting, active]
    assert wire.error("DISCARD", id=active) == (
        f"Job {active} not found or already in DLQ/completed"
    )
    assert wire.error("DISCARD", id=3_000_003) == (
        "Job 3000003 not found or already in DLQ/completed"
    )


def test_heartbeat_and_job_id_alias(wire: Wire) -> None:
    """HEARTBEAT, with ★ `job_id` for `id` (the TS SDK's spelling, §6.3)."""
    queue = queue_on(0, "hb")
    job_id = wire.push(queue, 1)
    assert wire.error("HEARTBEAT", id=job_id) == f"Job {job_id} not in processing"
    pulled = wire.pull(queue)
    assert wire.ok("HEARTBEAT", id=job_id) == {"ok": True}
    assert wire.ok("HEARTBEAT", job_id=job_id) == {"ok": True}
    assert wire.job(job_id)["last_heartbeat"] >= pulled["last_heartbeat"]
    assert wire.error("HEARTBEAT", job_id=4_000_004) == "Job 4000004 not in processing"


def test_log_and_getlogs(wire: Wire) -> None:
    queue = queue_on(1, "logs")
    job_id = wire.push(queue, 1)
    before = now_ms()
    assert wire.ok("LOG", id=job_id, message="first") == {"ok": True}
    assert wire.ok("LOG", job_id=job_id, message="second", level="warn") == {"ok": True}  # ★
    wire.ok("LOG", id=job_id, message="third", level="anything goes")
    reply = wire.ok("GETLOGS", id=job_id)
    assert list(reply) == ["ok", "id", "logs"]
    assert reply["id"] == job_id
    logs = reply["logs"]
    assert [(e["message"], e["level"]) for e in logs] == [
        ("first", "info"),
        ("second", "warn"),
        ("third", "anything goes"),
    ]
    for entry in logs:
        assert set(entry) == {"timestamp", "message", "level"}
        assert entry["timestamp"] >= before
    assert wire.ok("GETLOGS", job_id=job_id)["logs"] == logs  # ★ alias on GETLOGS too
    wire.pull(queue)
    wire.ok("ACK", id=job_id)
    wire.ok("LOG", id=job_id, message="after completion")  # recently completed: still indexed
    assert wire.ok("GETLOGS", id=job_id)["logs"][-1]["message"] == "after completion"
    assert wire.error("LOG", id=5_000_005, message="x") == "Job 5000005 not found"
    assert wire.ok("GETLOGS", id=5_000_005) == {"ok": True, "id": 5_000_005, "logs": []}
    assert wire.request("LOG", id=job_id)["error"].startswith("Invalid: ")  # message required


def test_log_keeps_last_100(wire: Wire) -> None:
    job_id = wire.push(queue_on(0, "logs-cap"), 1)
    wire.send(*[{"cmd": "LOG", "id": job_id, "message": str(i)} for i in range(105)])
    assert all(r == {"ok": True} for r in wire.read_n(105))
    logs = wire.ok("GETLOGS", id=job_id)["logs"]
    assert [e["message"] for e in logs] == [str(i) for i in range(5, 105)]


def test_partial(wire: Wire) -> None:
    queue = queue_on(1, "partial")
    job_id = wire.push(queue, 1)
    assert wire.error("PARTIAL", id=job_id, data=1) == f"Job {job_id} not found in processing"
    wire.pull(queue)
    assert wire.ok("PARTIAL", id=job_id, data={"chunk": 1}, index=0) == {"ok": True}
    assert wire.ok("PARTIAL", id=job_id, data=None) == {"ok": True}
    assert wire.request("PARTIAL", id=job_id)["error"].startswith("Invalid: ")  # data required


# == §3.4: processing timeout and stalls (ticks of the coordinator: every 500 ms) ===============


def test_processing_timeout_retries_then_dead_letters(wire: Wire) -> None:
    queue = queue_on(0, "timeout")
    job_id = wire.push(queue, 1, timeout=1, max_attempts=2)
    wire.pull(queue)
    again = wire.ok("PULL", queue=queue, timeout=5000)["job"]  # requeued by the timeout tick
    check_job(again, id=job_id, attempts=1, progress_msg="Job timed out")
    assert wire.error("WAITJOB", id=job_id, timeout=5000) == "Job failed"
    check_job(wire.job(job_id), attempts=2)
    assert wire.state(job_id) == "failed"


def test_stalled_job_requeued_then_dead_lettered(wire: Wire) -> None:
    """§6.6 fix: upstream leaves a stalled job active (holding its slot and group) and only
    dead-letters it at the third detection; ours requeues it at the first two detections,
    so another worker gets it, and dead-letters it at the third. Same log texts."""
    queue = queue_on(1, "stall")
    job_id = wire.push(queue, 1, stall_timeout=1)
    wire.pull(queue)
    for count in (1, 2):
        job = wire.ok("PULL", queue=queue, timeout=5000)["job"]
        check_job(job, id=job_id, stall_count=count, attempts=0)
    assert wire.error("WAITJOB", id=job_id, timeout=5000) == "Job failed"
    logs = [(e["message"], e["level"]) for e in wire.ok("GETLOGS", id=job_id)["logs"]]
    assert logs == [
        ("Job stall detected (count: 1)", "warn"),
        ("Job stall detected (count: 2)", "warn"),
        ("Job stall detected (count: 3)", "warn"),
        ("Job moved to DLQ after 3 stall detections", "error"),
    ]
