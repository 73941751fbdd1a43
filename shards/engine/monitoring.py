"""LISTQUEUES, STATS and METRICS for this shard; the acceptor merges all shards' answers."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from .delivery import promote
from .state import Handler, Reply

if TYPE_CHECKING:
    from .queue import QueueState
    from .state import ShardState


def _shown(st: ShardState, now: int) -> list[QueueState]:
    """Queues listed by LISTQUEUES (pushed to since the last drain), due jobs promoted."""
    out = [q for q in st.queues.values() if q.listed]
    for q in out:
        promote(q, now)
    return out


def cmd_listqueues(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    infos = []
    for q in _shown(st, now):
        waiting, delayed = q.counts()
        infos.append(
            {
                "name": q.name,
                "pending": waiting,
                "processing": len(q.active),
                "completed": len(q.completed),
                "delayed": delayed,
                "dlq": len(q.dlq),
                "paused": q.paused,
                "rate_limit": q.rate_limit,
                "concurrency_limit": q.concurrency,
            }
        )
    return {"ok": True, "queues": infos}


def cmd_stats(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Shard totals plus the per-queue map the Python and Go SDKs read (§6.3 ★)."""
    queued = delayed_total = dlq = 0
    queues: dict[str, Any] = {}
    for q in st.queues.values():
        promote(q, now)
        waiting, delayed = q.counts()
        queued += waiting
        delayed_total += delayed
        dlq += len(q.dlq)
        if q.listed or q.jobs:
            queues[q.name] = {
                "waiting": waiting,
                "active": len(q.active),
                "completed": len(q.completed),
                "failed": len(q.dlq),
                "delayed": delayed,
                "paused": q.paused,
            }
    return {
        "ok": True,
        "queued": queued,
        "processing": len(st.active),
        "delayed": delayed_total,
        "dlq": dlq,
        "completed": len(st.completed),
        "queues": queues,
    }


def cmd_metrics(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    latency = st.latency_sum / st.latency_count if st.latency_count else 0.0
    return {
        "ok": True,
        "metrics": {
            "total_pushed": st.total_pushed,
            "total_completed": st.total_completed,
            "total_failed": st.total_failed,
            "jobs_per_second": round(st.jobs_per_second, 2),
            "avg_latency_ms": round(latency, 2),
            "queues": [
                {
                    "name": q.name,
                    "pending": q.n_waiting,
                    "processing": len(q.active),
                    "dlq": len(q.dlq),
                    "rate_limit": q.rate_limit,
                }
                for q in st.queues.values()
                if q.listed or q.jobs
            ],
        },
    }


def sample_metrics(st: ShardState, now: int) -> None:
    """Metrics tick: completions per second since the previous tick."""
    if st.window_start >= 0 and now > st.window_start:
        done = st.total_completed - st.window_completed
        st.jobs_per_second = done * 1000.0 / (now - st.window_start)
    st.window_start = now
    st.window_completed = st.total_completed


HANDLERS: dict[str, Handler] = {
    "LISTQUEUES": cmd_listqueues,
    "STATS": cmd_stats,
    "METRICS": cmd_metrics,
}
