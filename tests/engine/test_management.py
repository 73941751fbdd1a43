"""Job management commands (PROTOCOL §2.6)."""

from __future__ import annotations

from tests.engine.helpers import T0, Harness


def test_cancel_removes_waiting_active_and_dependent_jobs(h: Harness) -> None:
    waiting = h.push(unique_key="k")
    active = h.push()
    h("CHANGEPRIORITY", id=active, priority=5)
    h.pull()
    dependent = h.push(depends_on=[waiting])
    for job_id in (waiting, active, dependent):
        assert h("CANCEL", id=job_id) == {"ok": True}
        assert h.state(job_id) == "unknown"
    assert h("ACK", id=active)["ok"] is False
    h.push(unique_key="k")  # released
    assert h("CANCEL", id=4242) == {"ok": False, "error": "Job 4242 not found"}


def test_cancel_refuses_completed_and_failed(h: Harness) -> None:
    done = h.push()
    h.pull()
    h("ACK", id=done)
    dead = h.push()
    h("DISCARD", id=dead)
    for job_id in (done, dead):
        assert h("CANCEL", id=job_id) == {
            "ok": False,
            "error": f"Job {job_id} cannot be cancelled (already completed/failed)",
        }


def test_progress_and_getprogress(h: Harness) -> None:
    job_id = h.push()
    assert h("PROGRESS", id=job_id, progress=10) == {
        "ok": False,
        "error": f"Job {job_id} not found in processing",
    }
    assert h("GETPROGRESS", id=job_id) == {"ok": False, "error": f"Job {job_id} not found"}
    h.pull()
    h("PROGRESS", id=job_id, progress=250, message="almost")
    assert h("GETPROGRESS", id=job_id) == {
        "ok": True,
        "progress": {"id": job_id, "progress": 100, "message": "almost"},
    }
    assert h.events[-1] == {
        "event_type": "progress",
        "queue": "q",
        "job_id": job_id,
        "timestamp": T0,
        "progress": 100,
        "data": {"message": "almost"},
    }
    h("PROGRESS", id=job_id, progress=42.7)  # fractional progress is truncated by normalize
    assert h("GETPROGRESS", id=job_id)["progress"] == {
        "id": job_id,
        "progress": 42,
        "message": None,
    }


def test_updatejob_replaces_data_in_live_states(h: Harness) -> None:
    job_id = h.push("q", {"v": 1})
    h("UPDATEJOB", id=job_id, data={"v": 2})
    h.pull()
    h("UPDATE", id=job_id, data={"v": 3})  # the Python/Go spelling
    assert h("GETJOB", id=job_id)["job"]["data"] == {"v": 3}
    h("ACK", id=job_id)
    assert h("UPDATEJOB", id=job_id, data=1) == {"ok": False, "error": f"Job {job_id} not found"}


def test_changepriority_resorts_waiting_jobs(h: Harness) -> None:
    a, b = h.push(), h.push()
    h("CHANGEPRIORITY", id=b, priority=3)
    assert h("GETJOB", id=b)["job"]["priority"] == 3
    assert h.pull_id() == b
    h("CHANGEPRIORITY", id=b, priority=0)  # active: just the field
    assert h.pull_id() == a
    h("ACK", id=a)
    assert h("CHANGEPRIORITY", id=a, priority=1) == {
        "ok": False,
        "error": f"Job {a} not found or cannot change priority",
    }


def test_changepriority_of_a_delayed_job_applies_once_due(h: Harness) -> None:
    delayed = h.push(delay=100)
    h.push()
    h("CHANGEPRIORITY", id=delayed, priority=9)
    h.advance(100)
    assert h.pull_id() == delayed


def test_movetodelayed(h: Harness) -> None:
    job_id = h.push()
    assert h("MOVETODELAYED", id=job_id, delay=10) == {
        "ok": False,
        "error": f"Job {job_id} not in processing",
    }
    h.pull()
    h("PROGRESS", id=job_id, progress=50, message="m")
    h("MOVETODELAYED", id=job_id, delay=500)
    job = h("GETJOB", id=job_id)["job"]
    assert h.state(job_id) == "delayed"
    assert (job["run_at"], job["started_at"], job["progress"], job["progress_msg"]) == (
        T0 + 500,
        0,
        0,
        None,
    )
    assert job["attempts"] == 0
    h.advance(500)
    assert h.pull_id() == job_id


def test_promote(h: Harness) -> None:
    ready = h.push()
    delayed = h.push(delay=10_000)
    assert h("PROMOTE", id=ready) == {"ok": False, "error": f"Job {ready} is not delayed"}
    assert h("PROMOTE", id=77) == {
        "ok": False,
        "error": "Job 77 not found or not in delayed state",
    }
    assert h("PROMOTE", id=delayed) == {"ok": True}
    assert h.state(delayed) == "waiting"
    assert h("GETJOB", id=delayed)["job"]["run_at"] == T0
    assert [h.pull_id(), h.pull_id()] == [ready, delayed]


def test_promote_wakes_a_blocked_puller(h: Harness) -> None:
    delayed = h.push(delay=10_000)
    token = h.block("PULL", queue="q", timeout=60_000)
    h("PROMOTE", id=delayed)
    assert h.resolved[token]["job"]["id"] == delayed


def test_discard_sends_to_dlq_without_attempt_or_event(h: Harness) -> None:
    waiting = h.push()
    active = h.push()
    h("CHANGEPRIORITY", id=active, priority=1)
    h.pull()
    h.events.clear()
    for job_id in (waiting, active):
        assert h("DISCARD", id=job_id) == {"ok": True}
        assert h.state(job_id) == "failed"
    assert h.events == []
    assert [j["attempts"] for j in h("DLQ", queue="q")["jobs"]] == [0, 0]
    assert h("DISCARD", id=waiting) == {
        "ok": False,
        "error": f"Job {waiting} not found or already in DLQ/completed",
    }


def test_heartbeat(h: Harness) -> None:
    job_id = h.push()
    assert h("HEARTBEAT", id=job_id) == {"ok": False, "error": f"Job {job_id} not in processing"}
    h.pull()
    h.advance(100)
    h("HEARTBEAT", job_id=job_id)  # the TS spelling of the field
    assert h("GETJOB", id=job_id)["job"]["last_heartbeat"] == T0 + 100


def test_logs_are_kept_per_job_bounded_and_survive_completion(h: Harness) -> None:
    job_id = h.push()
    for i in range(105):
        h("LOG", id=job_id, message=f"m{i}")
    h.pull()
    h("ACK", id=job_id)
    h("LOG", id=job_id, message="after", level="warn")
    logs = h("GETLOGS", id=job_id)["logs"]
    assert len(logs) == 100
    assert logs[0] == {"timestamp": T0, "message": "m6", "level": "info"}
    assert logs[-1] == {"timestamp": T0, "message": "after", "level": "warn"}
    assert h("LOG", id=555, message="x") == {"ok": False, "error": "Job 555 not found"}
    assert h("GETLOGS", id=555) == {"ok": True, "id": 555, "logs": []}


def test_partial_publishes_an_event(h: Harness) -> None:
    job_id = h.push()
    assert h("PARTIAL", id=job_id, data="x")["ok"] is False
    h.pull()
    h("PARTIAL", id=job_id, data="chunk-1", index=0)
    h("PARTIAL", id=job_id, data="chunk-2")
    assert [e.get("data") for e in h.events[-2:]] == [
        {"chunk": "chunk-1", "index": 0},
        {"chunk": "chunk-2"},
    ]
    assert h.events[-1]["event_type"] == "partial"
