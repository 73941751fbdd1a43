"""What the acceptor measures for /metrics/history, Prometheus and the dashboard.

- Per-queue latency histograms, push → completed: kept by the shard engines as they complete
  jobs (every job, batch-pushed ones too) and added up here from the processes' `_STATS`.
- The history of MetricsHistoryPoints (PROTOCOL §3.5), sampled every 5 s, last 60 kept.
  Throughput and latency are per interval (deltas of the cumulative counters), so the chart
  shows what happened in those 5 s rather than a lifetime average.
- A per-shard-process summary of `Router.process_stats()` (load, group-commit batch size,
  storage commit latency), with each process's queue depth from STATS.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import trio

from flashq import histogram
from flashq.histogram import Histogram
from flashq.protocol import routing

log = logging.getLogger("flashq.http.metrics")

HISTORY_INTERVAL_S: Final = 5.0
HISTORY_POINTS: Final = 60

Execute = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@attrs.define
class MetricsRecorder:
    history: collections.deque[dict[str, Any]] = attrs.field(
        factory=lambda: collections.deque(maxlen=HISTORY_POINTS)
    )
    _last: tuple[int, int, float] | None = None  # (timestamp, completed, latency sum)

    def sample(self, stats: Mapping[str, Any], metrics: Mapping[str, Any], now_ms: int) -> None:
        """Append one MetricsHistoryPoint from STATS and METRICS replies."""
        completed = int(metrics.get("total_completed", 0))
        latency_sum = float(metrics.get("avg_latency_ms", 0.0)) * completed
        throughput = latency = 0.0
        if self._last is not None:
            then, done_then, sum_then = self._last
            done = completed - done_then
            if now_ms > then and done > 0:
                throughput = done * 1000.0 / (now_ms - then)
                latency = max(0.0, (latency_sum - sum_then) / done)
        self._last = (now_ms, completed, latency_sum)
        self.history.append(
            {
                "timestamp": now_ms,
                "queued": int(stats.get("queued", 0)),
                "processing": int(stats.get("processing", 0)),
                "completed": completed,
                "failed": int(metrics.get("total_failed", 0)),
                "throughput": round(throughput, 2),
                "latency_ms": round(latency, 2),
            }
        )

    async def run_sampler(
        self, execute: Execute, clock: Callable[[], int], interval_s: float = HISTORY_INTERVAL_S
    ) -> None:
        """Sample now and then every `interval_s` until cancelled."""
        while True:
            stats = await execute({"cmd": "STATS"})
            metrics = await execute({"cmd": "METRICS"})
            if stats.get("ok") and metrics.get("ok"):
                self.sample(stats, metrics["metrics"], clock())
            else:
                log.debug("metrics sample skipped: %s", stats.get("error") or metrics.get("error"))
            await trio.sleep(interval_s)


def latency_by_queue(procs: Sequence[Mapping[str, Any]]) -> dict[str, Histogram]:
    """The shard processes' per-queue histograms (`_STATS` replies) added up."""
    return histogram.merge(
        (str(queue), plain)
        for proc in procs
        if proc.get("ok")
        for queue, plain in proc.get("latency") or ()
    )


def latency_summary(latency: Mapping[str, Histogram]) -> dict[str, dict[str, Any]]:
    """Per queue: count, mean and bucket-bound p50/p95/p99, for the dashboard."""
    return {
        queue: {
            "count": h.count,
            "avg_ms": round(h.total / h.count, 2) if h.count else 0.0,
            "p50_ms": h.quantile(0.5),
            "p95_ms": h.quantile(0.95),
            "p99_ms": h.quantile(0.99),
        }
        for queue, h in latency.items()
    }


def process_summary(
    procs: Sequence[Mapping[str, Any]], queue_stats: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per shard process: up, load, group-commit batch size, commit latency, depth."""
    nprocs = len(procs)
    depth = [0] * nprocs
    active = [0] * nprocs
    for name, counts in queue_stats.items():
        p = routing.process_of_shard(routing.shard_of_queue(name), nprocs)
        depth[p] += int(counts.get("waiting", 0)) + int(counts.get("delayed", 0))
        active[p] += int(counts.get("active", 0))
    rows = []
    for index, proc in enumerate(procs):
        row: dict[str, Any] = {"index": index, "up": bool(proc.get("ok")),
                               "depth": depth[index], "active": active[index]}  # fmt: skip
        if proc.get("ok"):
            storage = proc.get("storage") or {}
            engines = (proc.get("engines") or {}).values()
            row.update(
                pid=proc.get("pid"),
                shards=list(proc.get("shards") or []),
                requests=int(proc.get("requests", 0)),
                batches=int(proc.get("batches", 0)),
                avg_batch=float(proc.get("avg_batch", 0.0)),
                busy_polls=int(proc.get("busy_polls", 0)),
                jobs=sum(int(e.get("jobs", 0)) - int(e.get("completed", 0)) for e in engines),
                waiters=sum(int(e.get("waiters", 0)) for e in engines),
                backend=storage.get("backend"),
                commits=int(storage.get("commits", 0)),
                last_commit_us=float(storage.get("last_commit_us", 0.0)),
                avg_commit_us=float(storage.get("avg_commit_us", 0.0)),
                max_commit_us=float(storage.get("max_commit_us", 0.0)),
            )
        rows.append(row)
    return rows
