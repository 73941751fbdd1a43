"""Metrics without a server: histograms, history sampling, Prometheus text, process rows."""

from __future__ import annotations

import re

from flashq.histogram import LATENCY_BUCKETS_MS, Histogram
from flashq.protocol import routing
from flashq.server.http.app import cors_origins
from flashq.server.http.auth import public_path, stream_path, token_valid
from flashq.server.http.metrics import (
    MetricsRecorder,
    latency_by_queue,
    latency_summary,
    process_summary,
)
from flashq.server.http.prometheus import escape_label, render


def test_histogram_buckets_are_upper_bounds() -> None:
    h = Histogram()
    for v in (0, 1, 2, 5, 999, 1000, 1001, 10**9):
        h.observe(v)
    cumulative = dict(zip(LATENCY_BUCKETS_MS, h.cumulative(), strict=False))
    # le=1 holds 0 and 1; le=5 adds 2 and 5; le=1000 adds 999 and 1000.
    assert (cumulative[1], cumulative[5], cumulative[1000], cumulative[2500]) == (2, 4, 6, 7)
    assert h.cumulative()[-1] == h.count == 8  # +Inf holds everything
    assert h.quantile(0.5) == 5.0
    assert h.quantile(1.0) is None  # the largest sample is beyond the last bound


def test_latency_adds_up_the_processes_histograms() -> None:
    one, two = Histogram(), Histogram()
    one.observe(40)
    two.observe(3)
    two.observe(40)
    procs = [
        {"ok": True, "latency": [["q", one.plain()], ["other", two.plain()]]},
        {"ok": True, "latency": [["q", two.plain()], ["bad", [[1, 2], 0, 3]]]},
        {"ok": False, "error": "Shard process unavailable, retry"},
    ]
    latency = latency_by_queue(procs)
    assert sorted(latency) == ["other", "q"]  # the malformed histogram is skipped
    assert (latency["q"].count, latency["q"].total) == (3, 83)
    summary = latency_summary(latency)["q"]
    assert (summary["count"], summary["avg_ms"], summary["p50_ms"]) == (3, 27.67, 50.0)


def test_history_points_are_per_interval() -> None:
    r = MetricsRecorder()
    stats = {"queued": 3, "processing": 1}
    r.sample(stats, {"total_completed": 10, "avg_latency_ms": 5.0, "total_failed": 1}, 10_000)
    # 5 s later: 20 more completions whose latencies sum to 20*8 = 160 + 50 (old) → mean 8 ms.
    r.sample(stats, {"total_completed": 30, "avg_latency_ms": 7.0, "total_failed": 2}, 15_000)
    first, second = r.history
    assert (first["throughput"], first["latency_ms"]) == (0.0, 0.0)
    assert second == {"timestamp": 15_000, "queued": 3, "processing": 1, "completed": 30,
                      "failed": 2, "throughput": 4.0, "latency_ms": 8.0}  # fmt: skip
    for t in range(100):
        r.sample(stats, {}, 20_000 + t)
    assert len(r.history) == 60


def test_process_summary_assigns_queue_depth_to_the_owning_process() -> None:
    name = next(f"q{i}" for i in range(100) if routing.shard_of_queue(f"q{i}") % 2 == 1)
    procs = [
        {"ok": True, "pid": 10, "shards": [0, 2], "batches": 4, "requests": 10, "avg_batch": 2.5,
         "engines": {0: {"jobs": 5, "completed": 2, "waiters": 1}},
         "storage": {"backend": "memory", "commits": 4, "avg_commit_us": 12.5}},
        {"ok": False, "error": "Shard process unavailable, retry"},
    ]  # fmt: skip
    rows = process_summary(procs, {name: {"waiting": 2, "delayed": 1, "active": 4}})
    assert (rows[0]["up"], rows[0]["jobs"], rows[0]["waiters"]) == (True, 3, 1)
    assert (rows[0]["depth"], rows[0]["avg_commit_us"]) == (0, 12.5)
    assert rows[1] == {"index": 1, "up": False, "depth": 3, "active": 4}


def test_prometheus_text() -> None:
    h = Histogram()
    h.observe(30)
    text = render(
        {"queued": 2, "processing": 1, "delayed": 0, "dlq": 0, "completed": 5},
        {"total_pushed": 8, "total_completed": 5, "total_failed": 0, "jobs_per_second": 1.5,
         "avg_latency_ms": 12.345, "queues": [{"name": 'we"ird\\q', "pending": 2}]},
        3,
        [{"index": 0, "up": True, "depth": 2, "active": 1, "avg_batch": 2.0, "requests": 9,
          "batches": 4, "commits": 4, "last_commit_us": 10.0, "avg_commit_us": 11.0,
          "max_commit_us": 30.0}],
        {'we"ird\\q': h},
        {"published": 7, "subscribers": 1},
        {"webhooks": 0, "delivered": 2},
    )  # fmt: skip
    assert "flashq_jobs_pushed_total 8" in text
    assert "# TYPE flashq_jobs_pushed_total counter" in text
    assert "flashq_latency_ms 12.35" in text  # two decimals, as upstream
    assert 'flashq_queue_jobs{queue="we\\"ird\\\\q",state="pending"} 2' in text
    assert 'flashq_job_latency_ms_bucket{queue="we\\"ird\\\\q",le="25"} 0' in text
    assert 'flashq_job_latency_ms_bucket{queue="we\\"ird\\\\q",le="50"} 1' in text
    assert 'flashq_storage_write_latency_us{process="0",stat="max"} 30' in text
    assert 'flashq_webhook_deliveries_total{result="delivered"} 2' in text
    types = re.findall(r"^# TYPE (\S+)", text, re.M)
    assert len(types) == len(set(types))
    assert text.endswith("\n")


def test_label_escaping() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_auth_helpers() -> None:
    assert token_valid((), None)
    assert token_valid(("a", "b"), "b")
    assert not token_valid(("a",), "ab")
    assert not token_valid(("a",), None)
    assert [public_path(p) for p in ("/health", "/docs", "/queues")] == [True, True, False]
    streams = ("/ws/x", "/queues/q/events", "/events", "/queues/q/jobs")
    assert [stream_path(p) for p in streams] == [True, True, True, False]


def test_cors_origins_setting() -> None:
    assert cors_origins("*") == ["*"]
    assert cors_origins("") == ["*"]
    assert cors_origins("https://a.example, https://b.example") == [
        "https://a.example", "https://b.example",
    ]  # fmt: skip
