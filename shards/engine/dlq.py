"""Dead-letter queue commands (PROTOCOL §2.8): DLQ, RETRYDLQ, PURGEDLQ."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from .lifecycle import forget
from .state import Handler, Reply

if TYPE_CHECKING:
    from .job import Job
    from .state import ShardState


def cmd_dlq(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Oldest first."""
    q = st.queues.get(cmd["queue"])
    count = cmd.get("count")
    if count is None:
        count = 100
    jobs = [] if q is None else [j.wire() for j in islice(q.dlq.values(), count)]
    return {"ok": True, "jobs": jobs}


def retry_from_dlq(st: ShardState, job: Job, now: int) -> None:
    """Back to waiting, due now, with a fresh attempt budget; retakes its unique key if free."""
    st.unlink(job)
    job.attempts = 0
    job.stall_count = 0
    job.run_at = now
    job.started_at = 0
    st.hold_unique(job)
    st.enqueue(job, now)
    st.dirty.add(job.id)


def cmd_retrydlq(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """One job (`id`) or all; replies the count both ways SDKs read it (§6.3)."""
    q = st.queues.get(cmd["queue"])
    job_id = cmd.get("id")
    if q is None:
        targets: list[Job] = []
    elif job_id is None:
        targets = list(q.dlq.values())
    else:
        job = q.dlq.get(job_id)
        targets = [] if job is None else [job]
    for job in targets:
        retry_from_dlq(st, job, now)
    return {"ok": True, "ids": [len(targets)], "count": len(targets)}


def cmd_purgedlq(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    victims = [] if q is None else list(q.dlq.values())
    for job in victims:
        forget(st, job, None)
    return {"ok": True, "count": len(victims)}


HANDLERS: dict[str, Handler] = {"DLQ": cmd_dlq, "RETRYDLQ": cmd_retrydlq, "PURGEDLQ": cmd_purgedlq}
