"""CRON, CRONDELETE, CRONLIST and the cron tick (PROTOCOL §2.9)."""

from __future__ import annotations

from tests.engine.helpers import T0, Harness


def test_cron_validation_texts(h: Harness) -> None:
    assert h("CRON", name="c", queue="q") == {
        "ok": False,
        "error": "Must provide either 'schedule' or 'repeat_every'",
    }
    assert h("CRON", name="c", queue="q", schedule="*/x") == {
        "ok": False,
        "error": "Invalid interval format: */x",
    }
    assert h("CRONLIST") == {"ok": True, "crons": []}


def test_repeat_every_cron_fires_on_ticks(h: Harness) -> None:
    h("CRON", name="c", queue="q", data={"n": 1}, repeat_every=1000, priority=3)
    assert h("CRONLIST")["crons"] == [
        {
            "name": "c",
            "queue": "q",
            "data": {"n": 1},
            "schedule": None,
            "repeat_every": 1000,
            "priority": 3,
            "next_run": T0 + 1000,
            "executions": 0,
            "limit": None,
        }
    ]
    h.now += 999
    h.tick("cron")
    assert h.counts()["waiting"] == 0
    h.now += 1
    h.tick("cron")
    job = h.pull()
    assert job is not None
    assert job["data"] == {"n": 1}
    assert job["priority"] == 3
    cron = h("CRONLIST")["crons"][0]
    assert (cron["executions"], cron["next_run"]) == (1, T0 + 2000)
    h.now += 5000  # late tick: one run, not five
    h.tick("cron")
    assert h.counts()["waiting"] == 1


def test_schedule_cron_every_n_seconds(h: Harness) -> None:
    h("CRON", name="c", queue="q", schedule="*/2")
    assert h("CRONLIST")["crons"][0]["next_run"] == T0 + 2000


def test_cron_limit_deletes_after_last_run(h: Harness) -> None:
    h("CRON", name="c", queue="q", repeat_every=10, limit=2)
    for _ in range(3):
        h.now += 10
        h.tick("cron")
    assert h.counts()["waiting"] == 2
    assert h("CRONLIST")["crons"] == []
    assert "c:c" not in h.store


def test_cron_replace_and_delete(h: Harness) -> None:
    h("CRON", name="c", queue="q", repeat_every=10)
    h.now += 10
    h.tick("cron")
    h("CRON", name="c", queue="q", repeat_every=50)
    cron = h("CRONLIST")["crons"][0]
    assert (cron["executions"], cron["repeat_every"]) == (0, 50)
    assert h("CRONDELETE", name="c") == {"ok": True}
    assert h("CRONDELETE", name="c") == {"ok": False, "error": "Cron job not found"}


def test_cron_firing_and_progress_are_committed_together(h: Harness) -> None:
    h("CRON", name="c", queue="q", repeat_every=100)
    h.now += 100
    h.engine.tick("cron", h.now)
    changes = h.engine.take_changes()
    assert "c:c" in changes
    assert any(k.startswith("j:") for k in changes)
    h.drain()


def test_cron_survives_restart_without_repeating_a_run(h: Harness) -> None:
    h("CRON", name="c", queue="q", repeat_every=100)
    h.now += 100
    h.tick("cron")
    again = h.reloaded()
    again.tick("cron")  # same instant: already ran
    assert again.counts()["waiting"] == 1
    assert again("CRONLIST")["crons"][0]["executions"] == 1


def test_cron_with_invalid_queue_counts_a_run_and_pushes_nothing(h: Harness) -> None:
    h("CRON", name="c", queue="bad queue", repeat_every=10)
    h.now += 10
    h.tick("cron")
    assert h("CRONLIST")["crons"][0]["executions"] == 1
    assert h("STATS")["queued"] == 0
