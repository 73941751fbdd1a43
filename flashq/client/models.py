"""Typed records of the server's replies (PROTOCOL.md §2-3), built from reply dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, final

import attrs

__all__ = [
    "CronJob",
    "FlowResult",
    "JobCounts",
    "LogEntry",
    "Metrics",
    "Progress",
    "QueueInfo",
    "QueueMetrics",
    "QueueStats",
    "Stats",
]


@final
@attrs.frozen
class JobCounts:
    """Jobs of one queue per state (GETJOBCOUNTS); `failed` is the DLQ size."""

    waiting: int = 0
    active: int = 0
    delayed: int = 0
    completed: int = 0
    failed: int = 0

    @classmethod
    def from_wire(cls, reply: Mapping[str, Any]) -> JobCounts:
        # Flat keys are upstream's shape; `counts` is the ★ additive copy (PROTOCOL §6.3).
        src = reply.get("counts") or reply
        return cls(
            waiting=src.get("waiting", 0),
            active=src.get("active", 0),
            delayed=src.get("delayed", 0),
            completed=src.get("completed", 0),
            failed=src.get("failed", 0),
        )

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


@final
@attrs.frozen
class QueueInfo:
    """One queue as LISTQUEUES describes it (`pending` = ready jobs)."""

    name: str
    pending: int = 0
    processing: int = 0
    completed: int = 0
    delayed: int = 0
    dlq: int = 0
    paused: bool = False
    rate_limit: int | None = None
    concurrency_limit: int | None = None

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> QueueInfo:
        return cls(
            name=obj["name"],
            pending=obj.get("pending", 0),
            processing=obj.get("processing", 0),
            completed=obj.get("completed", 0),
            delayed=obj.get("delayed", 0),
            dlq=obj.get("dlq", 0),
            paused=bool(obj.get("paused", False)),
            rate_limit=obj.get("rate_limit"),
            concurrency_limit=obj.get("concurrency_limit"),
        )


@final
@attrs.frozen
class CronJob:
    """A cron schedule (CRONLIST); `next_run` is epoch ms, `repeat_every` ms."""

    name: str
    queue: str
    data: Any = None
    schedule: str | None = None
    repeat_every: int | None = None
    priority: int = 0
    next_run: int = 0
    executions: int = 0
    limit: int | None = None

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> CronJob:
        return cls(
            name=obj["name"],
            queue=obj.get("queue", ""),
            data=obj.get("data"),
            schedule=obj.get("schedule"),
            repeat_every=obj.get("repeat_every"),
            priority=obj.get("priority", 0),
            next_run=obj.get("next_run", 0),
            executions=obj.get("executions", 0),
            limit=obj.get("limit"),
        )


@final
@attrs.frozen
class QueueStats:
    """Per-queue counts of the optional STATS `queues` map (PROTOCOL.md §6.3 ★)."""

    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    delayed: int = 0
    paused: bool = False

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> QueueStats:
        return cls(
            waiting=obj.get("waiting", 0),
            active=obj.get("active", 0),
            completed=obj.get("completed", 0),
            failed=obj.get("failed", 0),
            delayed=obj.get("delayed", 0),
            paused=bool(obj.get("paused", False)),
        )


@final
@attrs.frozen
class Stats:
    """Global counters (STATS): ready, active, delayed, DLQ and completion records."""

    queued: int = 0
    processing: int = 0
    delayed: int = 0
    dlq: int = 0
    completed: int = 0
    queues: Mapping[str, QueueStats] = attrs.field(factory=dict)

    @classmethod
    def from_wire(cls, reply: Mapping[str, Any]) -> Stats:
        queues = reply.get("queues") or {}
        return cls(
            queued=reply.get("queued", 0),
            processing=reply.get("processing", 0),
            delayed=reply.get("delayed", 0),
            dlq=reply.get("dlq", 0),
            completed=reply.get("completed", 0),
            queues={name: QueueStats.from_wire(q) for name, q in queues.items()},
        )


@final
@attrs.frozen
class QueueMetrics:
    """One queue in METRICS (`pending` = waiting + delayed)."""

    name: str
    pending: int = 0
    processing: int = 0
    dlq: int = 0
    rate_limit: int | None = None

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> QueueMetrics:
        return cls(
            name=obj["name"],
            pending=obj.get("pending", 0),
            processing=obj.get("processing", 0),
            dlq=obj.get("dlq", 0),
            rate_limit=obj.get("rate_limit"),
        )


@final
@attrs.frozen
class Metrics:
    """Server throughput counters (METRICS)."""

    total_pushed: int = 0
    total_completed: int = 0
    total_failed: int = 0
    jobs_per_second: float = 0.0
    avg_latency_ms: float = 0.0
    queues: tuple[QueueMetrics, ...] = ()

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> Metrics:
        return cls(
            total_pushed=obj.get("total_pushed", 0),
            total_completed=obj.get("total_completed", 0),
            total_failed=obj.get("total_failed", 0),
            jobs_per_second=float(obj.get("jobs_per_second", 0.0)),
            avg_latency_ms=float(obj.get("avg_latency_ms", 0.0)),
            queues=tuple(QueueMetrics.from_wire(q) for q in obj.get("queues") or ()),
        )


@final
@attrs.frozen
class LogEntry:
    """One line of a job's log (GETLOGS); `timestamp` is epoch ms."""

    timestamp: int
    message: str
    level: str = "info"

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any]) -> LogEntry:
        return cls(obj.get("timestamp", 0), obj.get("message", ""), obj.get("level", "info"))


class Progress(NamedTuple):
    """A job's progress (GETPROGRESS); unpacks as upstream's `(progress, message)` tuple."""

    progress: int
    message: str | None

    @classmethod
    def from_wire(cls, reply: Mapping[str, Any]) -> Progress:
        value = reply.get("progress")
        if isinstance(value, Mapping):  # upstream/our shape: {"progress": {id, progress, message}}
            return cls(value.get("progress", 0), value.get("message"))
        return cls(value or 0, reply.get("message"))


@final
@attrs.frozen
class FlowResult:
    """Ids created by FLOW: the parent first, then the children in order."""

    parent_id: int
    children_ids: tuple[int, ...]

    def __getitem__(self, key: str) -> Any:
        """`result["parent_id"]`, as upstream's dict reply allowed."""
        if key not in ("parent_id", "children_ids"):
            raise KeyError(key)
        return getattr(self, key)
