"""Queue control (PROTOCOL §2.7), DLQ commands (§2.8), LISTQUEUES/STATS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.helpers import T0, Harness


def test_pause_resume_ispaused(h: Harness) -> None:
    assert h("ISPAUSED", queue="q") == {"ok": True, "paused": False}
    h("PAUSE", queue="q")
    assert h("ISPAUSED", queue="q") == {"ok": True, "paused": True}
    h.push()  # pushes still accepted
    h("RESUME", queue="q")
    assert h("ISPAUSED", queue="q")["paused"] is False
    assert h.pull_id() is not None


def test_drain_removes_waiting_and_delayed_only(h: Harness) -> None:
    waiting = h.push(unique_key="k")
    delayed = h.push(delay=100)
    active = h.push()
    h("CHANGEPRIORITY", id=active, priority=1)
    h.pull()
    assert h("DRAIN", queue="q") == {"ok": True, "count": 2}
    assert h.state(waiting) == h.state(delayed) == "unknown"
    assert h.state(active) == "active"
    assert h("LISTQUEUES")["queues"] == []
    h.push(unique_key="k")
    assert [q["name"] for q in h("LISTQUEUES")["queues"]] == ["q"]


def test_obliterate_removes_everything_of_the_queue(h: Harness) -> None:
    waiting = h.push()
    active = h.push(priority=5)
    h.pull()
    dead = h.push(max_attempts=1, priority=5)
    h.pull()
    h("FAIL", id=dead)
    done = h.push(priority=5)
    h.pull()
    h("ACK", id=done)
    dependent = h.push(depends_on=[999_999])
    h("PAUSE", queue="q")
    h("RATELIMIT", queue="q", limit=5)
    h("CRON", name="c", queue="q", repeat_every=1000)
    h.push("other")
    assert h("OBLITERATE", queue="q") == {"ok": True, "count": 4}
    for job_id in (waiting, active, dead, done, dependent):
        assert h.state(job_id) == "unknown"
    assert h("ACK", id=active)["ok"] is False
    assert h("ISPAUSED", queue="q")["paused"] is False
    assert h("CRONLIST")["crons"] == []
    assert h.counts("other")["waiting"] == 1
    assert not any(k.startswith(("q:", "c:")) for k in h.store)


@pytest.mark.parametrize("state", ["WAITING", "waiting"])
def test_clean_waiting_respects_grace_and_limit(h: Harness, state: str) -> None:
    old1, old2 = h.push(), h.push()
    delayed = h.push(delay=50_000)
    h.advance(1000)
    young = h.push()
    assert h("CLEAN", queue="q", grace=500, state=state, limit=1) == {"ok": True, "count": 1}
    assert h.state(old1) == "unknown"  # oldest first
    assert h("CLEAN", queue="q", grace=500, state=state) == {"ok": True, "count": 1}
    assert h.state(old2) == "unknown"
    assert h.state(delayed) == "delayed"  # §6.6: waiting and delayed are distinct
    assert h.state(young) == "waiting"


def test_clean_delayed_completed_failed(h: Harness) -> None:
    delayed = h.push(delay=50_000)
    done = h.push()
    h.pull()
    h("ACK", id=done)
    other_done = h.push("other")
    h.pull("other")
    h("ACK", id=other_done)
    dead = h.push()
    h("DISCARD", id=dead)
    assert h("CLEAN", queue="q", grace=0, state="delayed")["count"] == 1
    assert h.state(delayed) == "unknown"
    h.advance(10)
    # completed honours the grace (measured from completion) and the queue (§6.6)
    assert h("CLEAN", queue="q", grace=100, state="completed")["count"] == 0
    assert h("CLEAN", queue="q", grace=10, state="completed")["count"] == 1
    assert h.state(done) == "unknown"
    assert h.state(other_done) == "completed"
    assert h("CLEAN", queue="q", grace=0, state="failed")["count"] == 1
    assert h.state(dead) == "unknown"
    assert h("CLEAN", queue="q", grace=0, state="active") == {
        "ok": False,
        "error": "Invalid state. Use: waiting, delayed, completed, failed",
    }


def test_settings_are_persisted(h: Harness) -> None:
    h("PAUSE", queue="q")
    h("RATELIMIT", queue="q", limit=7)
    h("SETCONCURRENCY", queue="q", limit=3)
    h.push()
    again = h.reloaded()
    info = again("LISTQUEUES")["queues"][0]
    assert (info["paused"], info["rate_limit"], info["concurrency_limit"]) == (True, 7, 3)
    again("RESUME", queue="q")
    again("RATELIMITCLEAR", queue="q")
    again("CLEARCONCURRENCY", queue="q")
    assert "q:q" not in again.store


def test_listqueues_and_stats(h: Harness) -> None:
    h.push()
    h.push(delay=100)
    active = h.push(priority=1)
    h.pull()
    dead = h.push()
    h("DISCARD", id=dead)
    info = h("LISTQUEUES")["queues"]
    assert info == [
        {
            "name": "q",
            "pending": 1,
            "processing": 1,
            "completed": 0,
            "delayed": 1,
            "dlq": 1,
            "paused": False,
            "rate_limit": None,
            "concurrency_limit": None,
        }
    ]
    h("ACK", id=active)
    stats = h("STATS")
    assert {k: stats[k] for k in ("queued", "processing", "delayed", "dlq", "completed")} == {
        "queued": 1,
        "processing": 0,
        "delayed": 1,
        "dlq": 1,
        "completed": 1,
    }
    assert stats["queues"]["q"] == {
        "waiting": 1,
        "active": 0,
        "completed": 1,
        "failed": 1,
        "delayed": 1,
        "paused": False,
    }


def test_subscribe_is_a_no_op(h: Harness) -> None:
    assert h("SUBSCRIBE", queue="q", events=["completed"]) == {"ok": True}
    assert h("UNSUBSCRIBE", queue="q") == {"ok": True}


# -- DLQ --------------------------------------------------------------------------------


def _dead(h: Harness, **options: Any) -> int:
    job_id = h.push(max_attempts=1, priority=100, **options)
    assert h.pull_id() == job_id
    h("FAIL", id=job_id, error="x")
    return job_id


def test_dlq_lists_oldest_first(h: Harness) -> None:
    first = _dead(h)
    h.advance(1)
    second = _dead(h)
    assert [j["id"] for j in h("DLQ", queue="q")["jobs"]] == [first, second]
    assert [j["id"] for j in h("DLQ", queue="q", count=1)["jobs"]] == [first]
    assert h("DLQ", queue="none") == {"ok": True, "jobs": []}


def test_retrydlq_one_and_all(h: Harness) -> None:
    a, b = _dead(h), _dead(h)
    h.advance(10)
    assert h("RETRYDLQ", queue="q", id=a) == {"ok": True, "ids": [1], "count": 1}
    job = h("GETJOB", id=a)["job"]
    assert (job["attempts"], job["run_at"]) == (0, T0 + 10)
    assert h.state(a) == "waiting"
    assert h("RETRYDLQ", queue="q", id=12345) == {"ok": True, "ids": [0], "count": 0}
    assert h("RETRYDLQ", queue="q") == {"ok": True, "ids": [1], "count": 1}
    assert h.state(b) == "waiting"


def test_retrydlq_wakes_a_puller(h: Harness) -> None:
    dead = _dead(h)
    token = h.block("PULL", queue="q", timeout=1000)
    h("RETRYDLQ", queue="q")
    assert h.resolved[token]["job"]["id"] == dead


def test_retried_job_retakes_its_unique_key_only_if_free(h: Harness) -> None:
    dead = _dead(h, unique_key="k")
    taker = h.push(unique_key="k")
    h("RETRYDLQ", queue="q")
    assert h.state(dead) == "waiting"
    h("CANCEL", id=dead)  # must not release the key held by `taker`
    assert h("PUSH", queue="q", data=1, unique_key="k")["ok"] is False
    h("CANCEL", id=taker)
    h.push(unique_key="k")


def test_purgedlq(h: Harness) -> None:
    a, b = _dead(h), _dead(h)
    assert h("PURGEDLQ", queue="q") == {"ok": True, "count": 2}
    assert h.state(a) == h.state(b) == "unknown"
