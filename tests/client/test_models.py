"""Records built from replies, options mapped to the wire, and the small pure helpers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from flashq.client import (
    ClientOptions,
    CronJob,
    FlowChild,
    FlowResult,
    Job,
    JobCounts,
    JobState,
    LogEntry,
    Metrics,
    Progress,
    PushOptions,
    QueueInfo,
    Retry,
    Stats,
    WorkerOptions,
)
from flashq.client._runtime import backoff_delays
from flashq.client._sync import Done, drive
from flashq.client.options import job_fields

WIRE_JOB: dict[str, Any] = {
    "id": 65, "queue": "emails", "data": {"to": "a@b.c"}, "priority": 5,
    "created_at": 1700000000000, "run_at": 1700000001000, "started_at": 1700000002000,
    "attempts": 1, "max_attempts": 3, "backoff": 100, "ttl": 0, "timeout": 60000,
    "unique_key": "u1", "depends_on": [33], "progress": 40, "progress_msg": "half",
    "tags": ["send", "x"], "lifo": True, "remove_on_complete": False, "remove_on_fail": True,
    "last_heartbeat": 1700000003000, "stall_timeout": 9000, "stall_count": 0,
    "parent_id": None, "children_ids": [], "children_completed": 0, "custom_id": "order-1",
    "keep_completed_age": 0, "keep_completed_count": 0, "completed_at": 0, "group_id": "g",
}  # fmt: skip


def test_job_from_the_31_key_wire_object():
    assert len(WIRE_JOB) == 31
    job = Job.from_wire({**WIRE_JOB, "state": "waitingchildren"})
    assert job.id == 65
    assert job.queue == "emails"
    assert job.data == {"to": "a@b.c"}
    assert job.depends_on == (33,)
    assert job.tags == ("send", "x")
    assert job.custom_id == "order-1"
    assert job.group_id == "g"
    assert job.lifo
    assert job.progress_message == "half"
    assert job.name == "send"
    assert job.state is JobState.WAITING_CHILDREN
    # The complete-object fast path and the generic path agree.
    sparse = {k: v for k, v in WIRE_JOB.items() if k != "completed_at"}  # its value is 0
    assert Job.from_wire(sparse, "waiting-children") == job


def test_job_from_a_sparse_object_takes_defaults_and_unbound_helpers_refuse():
    job = Job.from_wire({"id": 1})
    assert (job.queue, job.data, job.tags, job.state) == ("", None, (), None)
    with pytest.raises(RuntimeError, match="not bound"):
        job.log("x")


@pytest.mark.parametrize(
    ("wire", "state"),
    [
        ("waiting", JobState.WAITING),
        ("DELAYED", JobState.DELAYED),
        ("waiting-children", JobState.WAITING_CHILDREN),
        ("waitingchildren", JobState.WAITING_CHILDREN),
        ("waiting_parent", JobState.WAITING_CHILDREN),
        ("waitingparent", JobState.WAITING_CHILDREN),
        ("unknown", JobState.UNKNOWN),
        ("stalled", JobState.UNKNOWN),
        ("something-new", JobState.UNKNOWN),
    ],
)
def test_state_spellings(wire: str, state: JobState):
    assert JobState(wire) is state


def test_job_counts_from_flat_keys_and_from_counts():
    flat = {"ok": True, "waiting": 1, "active": 2, "delayed": 3, "completed": 4, "failed": 5}
    nested = {
        "ok": True,
        "counts": {"waiting": 1, "active": 2, "delayed": 3, "completed": 4, "failed": 5},
    }
    assert JobCounts.from_wire(flat) == JobCounts.from_wire(nested) == JobCounts(1, 2, 3, 4, 5)
    assert JobCounts(1, 2, 3, 4, 5).as_dict()["failed"] == 5


def test_progress_from_our_shape_and_upstream_sdk_shape():
    ours = Progress.from_wire({"progress": {"id": 1, "progress": 30, "message": "m"}})
    flat = Progress.from_wire({"progress": 30, "message": "m"})
    assert ours == flat == (30, "m")
    value, message = ours
    assert (value, message) == (30, "m")


def test_monitoring_records():
    stats = Stats.from_wire(
        {"queued": 1, "processing": 2, "delayed": 3, "dlq": 4, "completed": 5,
         "queues": {"q": {"waiting": 1, "paused": True}}}
    )  # fmt: skip
    assert stats.queued == 1
    assert stats.queues["q"].paused
    metrics = Metrics.from_wire(
        {"total_pushed": 9, "jobs_per_second": 1, "queues": [{"name": "q", "pending": 2}]}
    )
    assert metrics.jobs_per_second == 1.0
    assert metrics.queues[0].pending == 2
    info = QueueInfo.from_wire({"name": "q", "pending": 1, "paused": False, "rate_limit": 5})
    assert info.rate_limit == 5
    assert info.concurrency_limit is None
    cron = CronJob.from_wire({"name": "c", "queue": "q", "schedule": "*/5", "next_run": 7})
    assert cron.repeat_every is None
    assert cron.next_run == 7
    assert LogEntry.from_wire({"timestamp": 1, "message": "m", "level": "warn"}).level == "warn"
    flow = FlowResult(1, (2, 3))
    assert flow["parent_id"] == 1
    assert flow["children_ids"] == (2, 3)


def test_client_options_accept_upstream_names_and_reject_unknown_keys():
    opts = ClientOptions.from_mapping(
        {"host": "h", "port": 1, "timeout": 5000, "use_binary": True, "log_level": "info"}
    )
    assert (opts.host, opts.port, opts.request_timeout_s, opts.binary) == ("h", 1, 5.0, True)
    with pytest.raises(ValueError, match="'colour'"):
        ClientOptions.from_mapping({"colour": "blue"})
    env = ClientOptions.from_env({"FLASHQ_HOST": "10.0.0.1", "FLASHQ_PORT": "7000"})
    assert (env.host, env.port, env.token) == ("10.0.0.1", 7000, None)
    assert ClientOptions.coerce({"port": 2}, host="x") == ClientOptions(host="x", port=2)


def test_worker_options_accept_upstream_names():
    opts = WorkerOptions.from_mapping(
        {"concurrency": 3, "close_timeout": 5000, "stall_timeout": 9000, "auto_start": False}
    )
    assert (opts.concurrency, opts.shutdown_timeout_s, opts.heartbeat_interval_s) == (3, 5.0, 3.0)
    with pytest.raises(ValueError, match="'concurency'"):
        WorkerOptions.from_mapping({"concurency": 3})


def test_worker_prefetch_is_a_count_or_none_for_the_default():
    assert WorkerOptions().prefetch is None
    assert WorkerOptions.from_mapping({"prefetch": 0}).prefetch == 0
    assert WorkerOptions.from_mapping({"prefetch": None}).prefetch is None
    with pytest.raises(ValueError, match="prefetch"):
        WorkerOptions.from_mapping({"prefetch": -1})


def test_push_options_send_only_what_is_set_and_keywords_win():
    assert PushOptions().to_wire() == {}
    opts = PushOptions(priority=1, tags=("a",), job_id="k", max_attempts=3)
    fields = job_fields({"d": 1}, opts, {"priority": 9, "delay": 50})
    assert fields == {
        "data": {"d": 1}, "priority": 9, "tags": ["a"], "job_id": "k", "max_attempts": 3,
        "delay": 50,
    }  # fmt: skip
    assert job_fields(1, {"lifo": True, "ttl": None}, {}) == {"data": 1, "lifo": True}
    with pytest.raises(TypeError, match="'priorty'"):
        job_fields(1, None, {"priorty": 1})
    assert FlowChild("q", 1, delay=5).to_wire() == {
        "queue": "q",
        "data": 1,
        "priority": 0,
        "delay": 5,
    }


def test_retry_delay():
    assert Retry(1.5).delay_ms == 1500
    assert Retry(delay=0.25).delay_ms == 250
    assert Retry().delay_ms is None
    with pytest.raises(ValueError, match=">= 0"):
        Retry(-1)


def test_backoff_grows_with_jitter_up_to_the_cap():
    delays = backoff_delays(0.1, 1.0, random.Random(7))
    steps = [next(delays) for _ in range(8)]
    nominal = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for got, step in zip(steps, nominal, strict=True):
        assert step / 2 <= got <= step


def test_drive_runs_a_non_suspending_coroutine_and_done_awaits():
    async def value() -> int:
        return 42

    assert drive(value()) == 42

    async def suspends() -> None:
        import asyncio

        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspend"):
        drive(suspends())

    async def await_done() -> int:
        return await Done(7)

    assert drive(await_done()) == 7
