"""The Prometheus text exposition of GET /metrics/prometheus (PROTOCOL §5.7, format 0.0.4).

Upstream's metrics keep their names and labels; unlike upstream each gets its own correct
`# HELP`/`# TYPE` pair. Ours add per-queue latency histograms and per-shard-process gauges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from flashq.histogram import LATENCY_BUCKETS_MS, Histogram

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def escape_label(value: str) -> str:
    """Label values escape backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, Any]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


def _num(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if value != int(value) else str(int(value))


class Exposition:
    """Lines of one exposition; each metric family announced once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, Any], float]]) -> None:  # fmt: skip
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_num(value)}")

    def histograms(self, name: str, help_text: str, by_queue: Mapping[str, Histogram]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for queue, hist in sorted(by_queue.items()):
            cumulative = hist.cumulative()
            for bound, seen in zip(LATENCY_BUCKETS_MS, cumulative, strict=False):
                self.lines.append(f"{name}_bucket{_labels({'queue': queue, 'le': bound})} {seen}")
            self.lines.append(f"{name}_bucket{_labels({'queue': queue, 'le': '+Inf'})} "
                              f"{hist.count}")  # fmt: skip
            self.lines.append(f"{name}_sum{_labels({'queue': queue})} {_num(hist.total)}")
            self.lines.append(f"{name}_count{_labels({'queue': queue})} {hist.count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    stats: Mapping[str, Any],
    metrics: Mapping[str, Any],
    workers: int,
    processes: Sequence[Mapping[str, Any]],
    latency: Mapping[str, Histogram],
    hub: Mapping[str, int],
    webhooks: Mapping[str, int],
) -> str:
    out = Exposition()
    none: Mapping[str, Any] = {}
    for what in ("pushed", "completed", "failed"):
        out.family(f"flashq_jobs_{what}_total", "counter", f"Jobs {what} since the server started",
                   [(none, int(metrics.get(f"total_{what}", 0)))])  # fmt: skip
    out.family("flashq_jobs_current", "gauge", "Jobs currently in each state", [
        ({"state": state}, int(stats.get(field, 0)))
        for state, field in (("queued", "queued"), ("processing", "processing"),
                             ("delayed", "delayed"), ("dlq", "dlq"), ("completed", "completed"))
    ])  # fmt: skip
    out.family("flashq_throughput_per_second", "gauge", "Jobs completed per second",
               [(none, float(metrics.get("jobs_per_second", 0.0)))])  # fmt: skip
    out.family("flashq_latency_ms", "gauge", "Mean push-to-ack latency in milliseconds",
               [(none, float(metrics.get("avg_latency_ms", 0.0)))])  # fmt: skip
    queues = metrics.get("queues") or []
    out.family("flashq_queue_jobs", "gauge", "Jobs per queue and state", [
        ({"queue": q["name"], "state": state}, int(q.get(state, 0)))
        for q in queues for state in ("pending", "processing", "dlq")
    ])  # fmt: skip
    out.family("flashq_workers_active", "gauge", "Workers seen in the last 30 seconds",
               [(none, workers)])  # fmt: skip
    out.histograms("flashq_job_latency_ms", "Push-to-completion latency per queue in milliseconds",
                   latency)  # fmt: skip
    _processes(out, processes)
    out.family("flashq_events_published_total", "counter", "Job events fanned out by the acceptor",
               [(none, hub.get("published", 0))])  # fmt: skip
    out.family("flashq_event_subscribers", "gauge", "Open WebSocket and SSE event streams",
               [(none, hub.get("subscribers", 0))])  # fmt: skip
    out.family("flashq_webhooks", "gauge", "Registered webhooks",
               [(none, webhooks.get("webhooks", 0))])  # fmt: skip
    out.family("flashq_webhook_deliveries_total", "counter",
               "Webhook deliveries by outcome (retried counts extra attempts)",
               [({"result": r}, webhooks.get(r, 0))
                for r in ("delivered", "failed", "retried", "skipped", "dropped")])  # fmt: skip
    return out.text()


def _processes(out: Exposition, processes: Sequence[Mapping[str, Any]]) -> None:
    def per(field: str) -> list[tuple[Mapping[str, Any], float]]:
        return [({"process": p["index"]}, p.get(field, 0)) for p in processes if p.get("up")]

    out.family("flashq_shard_process_up", "gauge", "1 if the shard process answers",
               [({"process": p["index"]}, 1 if p.get("up") else 0) for p in processes])  # fmt: skip
    out.family("flashq_shard_process_queue_depth", "gauge",
               "Waiting and delayed jobs of the queues a shard process owns",
               [({"process": p["index"]}, p.get("depth", 0)) for p in processes])  # fmt: skip
    out.family("flashq_shard_process_active_jobs", "gauge", "Active jobs per shard process",
               [({"process": p["index"]}, p.get("active", 0)) for p in processes])  # fmt: skip
    out.family("flashq_shard_process_requests_total", "counter",
               "Requests executed by a shard process", per("requests"))  # fmt: skip
    out.family("flashq_group_commit_batches_total", "counter",
               "Group commits (event-loop batches) of a shard process", per("batches"))  # fmt: skip
    out.family("flashq_group_commit_batch_size", "gauge",
               "Mean requests per group commit of a shard process", per("avg_batch"))  # fmt: skip
    out.family("flashq_busy_polls_total", "counter",
               "Event-loop passes a shard process spent polling instead of sleeping",
               per("busy_polls"))  # fmt: skip
    out.family("flashq_storage_commits_total", "counter", "Storage commits of a shard process",
               per("commits"))  # fmt: skip
    out.family("flashq_storage_write_latency_us", "gauge",
               "Storage commit latency in microseconds (last, avg, max)",
               [({"process": p["index"], "stat": stat}, p.get(f"{stat}_commit_us", 0.0))
                for p in processes if p.get("up")
                for stat in ("last", "avg", "max")])  # fmt: skip
