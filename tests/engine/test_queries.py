"""Query commands and WAITJOB (PROTOCOL §2.5)."""

from __future__ import annotations

from tests.engine.helpers import Harness


def test_states_on_the_wire(h: Harness) -> None:
    waiting = h.push()
    delayed = h.push(delay=1000)
    active = h.push("busy")
    h.pull("busy")
    failed = h.push("dead", max_attempts=1)
    h.pull("dead")
    h("FAIL", id=failed)
    deps = h.push("dep", depends_on=[waiting])
    assert h.state(waiting) == "waiting"
    assert h.state(delayed) == "delayed"
    assert h.state(active) == "active"
    assert h.state(failed) == "failed"
    assert h.state(deps) == "waiting-children"
    assert h.state(123456) == "unknown"
    assert h("GETSTATE", id=7) == {"ok": True, "id": 7, "state": "unknown"}
    assert h("GETJOB", id=7) == {"ok": True, "job": None, "state": "unknown"}


def test_getjob_of_a_live_job(h: Harness) -> None:
    job_id = h.push("q", [1, 2])
    reply = h("GETJOB", id=job_id)
    assert reply["state"] == "waiting"
    assert reply["job"]["data"] == [1, 2]


def test_getresult_of_unfinished_job_is_null(h: Harness) -> None:
    job_id = h.push()
    assert h("GETRESULT", id=job_id) == {"ok": True, "id": job_id, "result": None}


def test_getjobbycustomid(h: Harness) -> None:
    job_id = h.push(job_id="abc")
    reply = h("GETJOBBYCUSTOMID", job_id="abc")
    assert reply["job"]["id"] == job_id
    assert reply["state"] == "waiting"
    assert h("GETJOBBYCUSTOMID", customId="nope") == {"ok": True, "job": None, "state": "unknown"}
    h.pull()
    h("ACK", id=job_id)
    assert h("GETJOBBYCUSTOMID", job_id="abc") == {"ok": True, "job": None, "state": "unknown"}


def test_getjobsbatch_keeps_request_order_and_omits_completed(h: Harness) -> None:
    a, b, c = h.push(), h.push(), h.push()
    h.pull()
    h("ACK", id=a)
    jobs = h("GETJOBSBATCH", ids=[c, 999, a, b])["jobs"]
    assert [(j["id"], j["state"]) for j in jobs] == [(c, "waiting"), (b, "waiting")]


def test_getjobs_filters_pages_and_counts(h: Harness) -> None:
    ids = [h.push() for _ in range(5)]
    h.push("other")
    h.pull()  # ids[0] active
    reply = h("GETJOBS", queue="q", state="WAITING", limit=2, offset=1)
    assert [j["id"] for j in reply["jobs"]] == [ids[3], ids[2]]  # newest first, skip 1
    assert reply["total"] == 4
    assert [j["id"] for j in h("GETJOBS", queue="q", state="active")["jobs"]] == [ids[0]]
    # any other state string means "no filter"
    assert h("GETJOBS", queue="q", state="whatever")["total"] == 5
    assert h("GETJOBS")["total"] == 6  # every queue of the shard
    assert h("GETJOBS", queue="missing") == {"ok": True, "jobs": [], "total": 0}


def test_getjobs_waiting_children_spellings(h: Harness) -> None:
    dep = h.push()
    child = h.push(depends_on=[dep])
    for spelling in ("waiting-children", "waitingchildren", "waiting_children"):
        jobs = h("GETJOBS", queue="q", state=spelling)["jobs"]
        assert [j["id"] for j in jobs] == [child]
        assert jobs[0]["state"] == "waiting-children"


def test_getjobcounts_and_count(h: Harness) -> None:
    h.push()
    h.push()
    h.push(delay=100)
    done = h.push()
    h("CHANGEPRIORITY", id=done, priority=10)
    h.pull()
    h("ACK", id=done)
    h.pull()
    dead = h.push(max_attempts=1)
    h("CHANGEPRIORITY", id=dead, priority=10)
    h.pull()
    h("FAIL", id=dead)
    counts = {"waiting": 1, "active": 1, "delayed": 1, "completed": 1, "failed": 1}
    assert h("GETJOBCOUNTS", queue="q") == {"ok": True, **counts, "counts": counts}
    assert h("COUNT", queue="q") == {"ok": True, "count": 2}
    h.advance(100)
    assert h.counts()["delayed"] == 0
    assert h.counts()["waiting"] == 2
    zero = {"waiting": 0, "active": 0, "delayed": 0, "completed": 0, "failed": 0}
    assert h("GETJOBCOUNTS", queue="none") == {"ok": True, **zero, "counts": zero}


def test_waitjob_immediate_answers(h: Harness) -> None:
    assert h("WAITJOB", id=5) == {"ok": False, "error": "Job not found"}
    done = h.push()
    h.pull()
    h("ACK", id=done, result="r")
    assert h("WAITJOB", id=done) == {"ok": True, "result": "r"}
    no_result = h.push()
    h.pull()
    h("ACK", id=no_result)
    assert h("WAITJOB", id=no_result) == {"ok": True}
    dead = h.push(max_attempts=1)
    h.pull()
    h("FAIL", id=dead)
    assert h("WAITJOB", id=dead) == {"ok": False, "error": "Job failed"}


def test_waitjob_blocks_until_ack(h: Harness) -> None:
    job_id = h.push()
    first = h.block("WAITJOB", id=job_id, timeout=10_000)
    second = h.block("WAITJOB", id=job_id, timeout=10_000)
    h.pull()
    h("ACK", id=job_id, result=[1])
    assert h.resolved[first] == h.resolved[second] == {"ok": True, "result": [1]}
    assert h.resolved[first] is not h.resolved[second]  # each reply is its own dict


def test_waitjob_times_out(h: Harness) -> None:
    job_id = h.push()
    token = h.block("WAITJOB", id=job_id, timeout=300)
    assert h.engine.next_deadline() == h.now + 300
    h.advance(300)
    assert h.resolved[token] == {
        "ok": False,
        "error": f"Timeout waiting for job {job_id} after 300ms",
    }


def test_waitjob_on_cancelled_job_says_not_found(h: Harness) -> None:
    job_id = h.push()
    token = h.block("WAITJOB", id=job_id, timeout=1000)
    h("CANCEL", id=job_id)
    assert h.resolved[token] == {"ok": False, "error": "Job not found"}


def test_waitjob_on_discarded_job_says_failed(h: Harness) -> None:
    job_id = h.push()
    token = h.block("WAITJOB", id=job_id, timeout=1000)
    h("DISCARD", id=job_id)
    assert h.resolved[token] == {"ok": False, "error": "Job failed"}


def test_waitjob_with_zero_timeout_times_out_at_once(h: Harness) -> None:
    job_id = h.push()
    assert h("WAITJOB", id=job_id, timeout=0) == {
        "ok": False,
        "error": f"Timeout waiting for job {job_id} after 0ms",
    }


def test_waitjob_on_obliterated_active_job_says_not_found(h: Harness) -> None:
    job_id = h.push()
    h.pull()
    token = h.block("WAITJOB", id=job_id, timeout=1000)
    h("OBLITERATE", queue="q")
    assert h.resolved[token] == {"ok": False, "error": "Job not found"}


def test_custom_id_of_a_dead_lettered_job_still_dedups(h: Harness) -> None:
    job_id = h.push(job_id="c")
    h("DISCARD", id=job_id)
    assert h.push(job_id="c") == job_id
    assert h("GETJOBBYCUSTOMID", job_id="c")["state"] == "failed"
