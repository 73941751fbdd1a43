"""Timer work: processing timeout, stall detection, retention (DESIGN.md timers)."""

from __future__ import annotations

from shards.engine import EngineConfig
from tests.engine.helpers import T0, Harness


def test_processing_timeout_retries_with_backoff(h: Harness) -> None:
    job_id = h.push(timeout=1000, backoff=50)
    h.pull()
    h.now += 1000
    h.tick("timeout")
    assert h.state(job_id) == "active"  # not past the timeout yet
    h.now += 1
    h.tick("timeout")
    job = h("GETJOB", id=job_id)["job"]
    assert h.state(job_id) == "delayed"
    assert (job["attempts"], job["progress_msg"]) == (1, "Job timed out")
    assert job["run_at"] == h.now + 100  # backoff * 2**1
    assert "timeout" in h.event_types()


def test_processing_timeout_dead_letters_out_of_attempts(h: Harness) -> None:
    job_id = h.push(timeout=10, max_attempts=1, group_id="g")
    other = h.push(group_id="g")
    h.pull()
    waiter = h.block("WAITJOB", id=job_id, timeout=10_000)
    h.now += 11
    h.tick("timeout")
    assert h.state(job_id) == "failed"
    assert h.resolved[waiter] == {"ok": False, "error": "Job failed"}
    assert h.pull_id() == other  # §6.6: group released on timeout


def test_stall_requeues_then_dead_letters_on_the_third(h: Harness) -> None:
    h("SETCONCURRENCY", queue="q", limit=1)
    job_id = h.push(stall_timeout=100)
    for count in (1, 2):
        assert h.pull_id() == job_id
        h.now += 101
        h.tick("timeout")
        assert h.state(job_id) == "waiting"  # slot freed (§6.6), so it can be pulled again
        job = h("GETJOB", id=job_id)["job"]
        assert (job["stall_count"], job["attempts"]) == (count, 0)
    assert h.pull_id() == job_id
    h.now += 101
    h.tick("timeout")
    assert h.state(job_id) == "failed"
    messages = [log["message"] for log in h("GETLOGS", id=job_id)["logs"]]
    assert messages == [
        "Job stall detected (count: 1)",
        "Job stall detected (count: 2)",
        "Job stall detected (count: 3)",
        "Job moved to DLQ after 3 stall detections",
    ]


def test_heartbeats_and_progress_prevent_stalls(h: Harness) -> None:
    job_id = h.push()  # default stall window: 30 s
    h.pull()
    beats: list[tuple[str, dict[str, object]]] = [
        ("HEARTBEAT", {}),
        ("PROGRESS", {"progress": 1}),
        ("LOG", {"message": "alive"}),
        ("PARTIAL", {"data": 1}),
    ]
    for command, fields in beats:
        h.now += 20_000
        assert h(command, id=job_id, **fields)["ok"]
        h.now += 20_000  # 40 s since the previous beat, 20 s since this one
        h.tick("timeout")
        assert h.state(job_id) == "active", command
    h.now += 10_001  # 30.001 s of silence
    h.tick("timeout")
    assert h.state(job_id) == "waiting"


def test_keep_completed_count_applies_on_ack(h: Harness) -> None:
    ids = [h.push(keep_completed_count=2) for _ in range(3)]
    for job_id in ids:
        assert h.pull_id() == job_id
        h("ACK", id=job_id, result=job_id)
    assert [h.state(i) for i in ids] == ["unknown", "completed", "completed"]
    assert f"j:{ids[0]}" not in h.store
    assert h.counts()["completed"] == 2


def test_keep_completed_age_applies_on_cleanup(h: Harness) -> None:
    short = h.push(keep_completed_age=1000)
    forever = h.push()
    for job_id in (short, forever):
        h.pull()
        h("ACK", id=job_id)
    h.now += 1001
    h.tick("cleanup")
    assert h.state(short) == "unknown"
    assert h.state(forever) == "completed"


def test_completed_jobs_are_capped_per_shard() -> None:
    h = Harness(config=EngineConfig(max_completed=3))
    ids = [h.push() for _ in range(5)]
    for job_id in ids:
        h.pull()
        h("ACK", id=job_id, result="r")
    assert [h.state(i) for i in ids] == ["unknown"] * 2 + ["completed"] * 3
    assert h("GETRESULT", id=ids[0])["result"] is None
    assert h("GETRESULT", id=ids[-1])["result"] == "r"


def test_cleanup_expires_debounce_windows(h: Harness) -> None:
    h.push(debounce_id="d", debounce_ttl=100)
    assert "d:q:d" in h.store
    h.now += 100
    h.tick("cleanup")
    assert "d:q:d" not in h.store


def test_metrics_tick_measures_throughput(h: Harness) -> None:
    h.tick("metrics")
    for _ in range(4):
        h.push()
        h("ACK", id=h.pull_id())
    h.now += 2000
    h.tick("metrics")
    assert h("METRICS")["metrics"]["jobs_per_second"] == 2.0
    assert h.now > T0


def test_stall_dead_letter_answers_waitjob(h: Harness) -> None:
    job_id = h.push(stall_timeout=10)
    token = h.block("WAITJOB", id=job_id, timeout=1_000_000)
    for _ in range(3):
        assert h.pull_id() == job_id
        h.now += 11
        h.tick("timeout")
    assert h.resolved[token] == {"ok": False, "error": "Job failed"}
    assert h.events[-1]["event_type"] == "failed"
