"""ACK, ACKB and FAIL (PROTOCOL §2.4), with the §6.6 fixes."""

from __future__ import annotations

from flashq.histogram import LATENCY_BUCKETS_MS
from tests.engine.helpers import T0, Harness


def test_ack_completes_and_keeps_the_result(h: Harness) -> None:
    job_id = h.push()
    h.pull()
    h.advance(40)
    assert h("ACK", id=job_id, result={"sum": 3}) == {"ok": True}
    assert h("GETJOB", id=job_id) == {"ok": True, "job": None, "state": "completed"}
    assert h("GETRESULT", id=job_id) == {"ok": True, "id": job_id, "result": {"sum": 3}}
    assert h.events[-1] == {
        "event_type": "completed",
        "queue": "q",
        "job_id": job_id,
        "timestamp": T0 + 40,
        "data": {"sum": 3},
    }
    listed = h("GETJOBS", queue="q", state="completed")["jobs"]
    assert listed[0]["completed_at"] == T0 + 40  # §6.6: upstream never set it
    assert listed[0]["state"] == "completed"


def test_ack_of_a_job_that_is_not_active_fails(h: Harness) -> None:
    job_id = h.push()
    assert h("ACK", id=job_id) == {"ok": False, "error": f"Job {job_id} not found"}
    assert h("ACK", id=999) == {"ok": False, "error": "Job 999 not found"}
    assert h("FAIL", id=job_id) == {"ok": False, "error": f"Job {job_id} not found"}


def test_remove_on_complete_forgets_the_job(h: Harness) -> None:
    job_id = h.push(remove_on_complete=True)
    h.pull()
    waiter = h.block("WAITJOB", id=job_id, timeout=1000)
    h("ACK", id=job_id, result=5)
    assert h.state(job_id) == "unknown"
    assert h("GETRESULT", id=job_id)["result"] is None
    assert h.resolved[waiter] == {"ok": True, "result": 5}  # waiters still get it
    assert f"j:{job_id}" not in h.store


def test_ackb_counts_and_behaves_like_ack(h: Harness) -> None:
    ids = [h.push(), h.push(), h.push()]
    h("PULLB", queue="q", count=2, timeout=0)
    waiter = h.block("WAITJOB", id=ids[0], timeout=1000)
    reply = h("ACKB", ids=[ids[0], ids[1], ids[2], 12345])
    assert reply == {"ok": True, "ids": [2], "count": 2}
    assert [h.state(i) for i in ids] == ["completed", "completed", "waiting"]
    assert h.event_types().count("completed") == 2  # §6.6: upstream ACKB emitted none
    assert h.resolved[waiter] == {"ok": True}


def test_fail_retries_immediately_without_backoff_keeping_its_place(h: Harness) -> None:
    a, b = h.push(), h.push()
    h.pull()
    h("FAIL", id=a, error="boom")
    job = h("GETJOB", id=a)["job"]
    assert h.state(a) == "waiting"
    assert (job["attempts"], job["progress_msg"], job["started_at"]) == (1, "boom", 0)
    assert job["run_at"] == T0
    assert h.pull_id() == a  # still ahead of b
    assert h.pull_id() == b
    assert "failed" not in h.event_types()


def test_fail_backoff_is_exponential(h: Harness) -> None:
    job_id = h.push(backoff=100)
    for attempt, wait in [(1, 200), (2, 400), (3, 800)]:
        h.pull()
        h("FAIL", id=job_id)
        job = h("GETJOB", id=job_id)["job"]
        assert job["attempts"] == attempt
        assert job["run_at"] == h.now + wait  # backoff * 2**attempts
        assert h.state(job_id) == "delayed"
        h.advance(wait - 1)
        assert h.pull_id() is None
        h.advance(1)


def test_final_failure_goes_to_dlq_and_releases_the_unique_key(h: Harness) -> None:
    job_id = h.push(max_attempts=2, unique_key="k")
    h.pull()
    h("FAIL", id=job_id, error="e1")
    h.pull()
    waiter = h.block("WAITJOB", id=job_id, timeout=1000)
    h("FAIL", id=job_id, error="e2")
    assert h.state(job_id) == "failed"
    assert h.resolved[waiter] == {"ok": False, "error": "Job failed"}
    assert h.events[-1]["event_type"] == "failed"
    assert h.events[-1]["error"] == "e2"
    assert [j["id"] for j in h("DLQ", queue="q")["jobs"]] == [job_id]
    h.push(unique_key="k")  # §6.6: upstream kept the key taken


def test_remove_on_fail_drops_the_job(h: Harness) -> None:
    job_id = h.push(max_attempts=1, remove_on_fail=True, unique_key="k")
    h.pull()
    h("FAIL", id=job_id, error="bad")
    assert h.state(job_id) == "unknown"
    assert h("DLQ", queue="q")["jobs"] == []
    assert h.events[-1] == {
        "event_type": "failed",
        "queue": "q",
        "job_id": job_id,
        "timestamp": T0,
        "error": "bad",
    }
    h.push(unique_key="k")


def test_ack_releases_unique_key_and_custom_id(h: Harness) -> None:
    job_id = h.push(unique_key="k", job_id="c")
    h.pull()
    h("ACK", id=job_id)
    assert h.push(unique_key="k", job_id="c") != job_id


def test_metrics_count_pushes_completions_failures(h: Harness) -> None:
    a = h.push()
    b = h.push(max_attempts=1)
    h.pull()
    h.pull()
    h.advance(100)
    h("ACK", id=a)
    h("FAIL", id=b)
    metrics = h("METRICS")["metrics"]
    assert (metrics["total_pushed"], metrics["total_completed"], metrics["total_failed"]) == (
        2,
        1,
        1,
    )
    assert metrics["avg_latency_ms"] == 100.0


def test_completion_feeds_the_queue_latency_histogram(h: Harness) -> None:
    first = h("PUSHB", queue="q", jobs=[{"data": 1}, {"data": 2}])["ids"]  # batch jobs count
    h("PULLB", queue="q", count=2, timeout=0)
    h.advance(30)
    h("ACKB", ids=first)
    other = h.push(queue="other")
    h.pull(queue="other")
    h.advance(2000)
    h("FAIL", id=other)
    [(queue, (counts, total, count))] = h.engine.latency()
    assert (queue, total, count) == ("q", 60.0, 2)  # a failure is not a completion
    assert counts[LATENCY_BUCKETS_MS.index(50)] == 2  # 30 ms falls in the le=50 bucket


def test_no_events_are_built_while_nobody_listens(h: Harness) -> None:
    h.engine.set_publishing(False)
    job_id = h.push()
    h.pull()
    h("ACK", id=job_id)
    assert h.events == []
    h.engine.set_publishing(True)
    h.push()
    assert [e["event_type"] for e in h.events] == ["pushed"]
