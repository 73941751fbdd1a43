"""Query commands (PROTOCOL §2.5): GETJOB ... COUNT, and WAITJOB.

Reads never change job state; the only exception is WAITJOB, which parks a waiter.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from heapq import nlargest
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .delivery import promote
from .job import ACTIVE, COMPLETED, DEPS, FAILED, PARENT, UNKNOWN, WAITING, Job
from .lifecycle import JOB_FAILED, JOB_NOT_FOUND
from .state import Handler, Reply, err
from .waiters import WAITJOB

if TYPE_CHECKING:
    from .state import ShardState

_by_id = attrgetter("id")

# GETJOBS `state` filter (case-insensitive); anything else means "no filter" (upstream).
_FILTERS: dict[str, str] = {
    "waiting": "waiting",
    "delayed": "delayed",
    "active": ACTIVE,
    "completed": COMPLETED,
    "failed": FAILED,
    "waiting-children": "children",
    "waitingchildren": "children",
    "waiting_children": "children",
    "waiting-parent": PARENT,
    "waitingparent": PARENT,
    "waiting_parent": PARENT,
    "stalled": "stalled",
}


def with_state(job: Job, now: int) -> dict[str, Any]:
    """JobWithState: the 31 Job keys plus ``state``."""
    out = job.wire()
    out["state"] = job.wire_state(now)
    return out


def _matcher(kind: str | None, now: int) -> Callable[[Job], bool] | None:
    if kind is None:
        return None
    if kind == "waiting":
        return lambda j: j.state == WAITING and j.run_at <= now
    if kind == "delayed":
        return lambda j: j.state == WAITING and j.run_at > now
    if kind == "children":
        return lambda j: j.state == DEPS or j.state == PARENT
    if kind == "stalled":
        return lambda j: False
    return lambda j: j.state == kind


def cmd_getjob(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job = st.jobs.get(cmd["id"])
    if job is None:
        return {"ok": True, "job": None, "state": UNKNOWN}
    if job.state == COMPLETED:
        return {"ok": True, "job": None, "state": COMPLETED}
    return {"ok": True, "job": job.wire(), "state": job.wire_state(now)}


def cmd_getstate(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    return {"ok": True, "id": job_id, "state": UNKNOWN if job is None else job.wire_state(now)}


def cmd_getresult(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    result = job.result if job is not None and job.state == COMPLETED else None
    return {"ok": True, "id": job_id, "result": result}


def cmd_getjobbycustomid(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Custom ids are per queue; this shard answers with the newest live holder, if any."""
    by_queue = st.custom.get(cmd["job_id"]) or {}
    best: Job | None = None
    for job_id in by_queue.values():
        job = st.jobs.get(job_id)
        if job is not None and job.state != COMPLETED and (best is None or job.id > best.id):
            best = job
    if best is None:
        return {"ok": True, "job": None, "state": UNKNOWN}
    return {"ok": True, "job": best.wire(), "state": best.wire_state(now)}


def cmd_getjobsbatch(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    jobs = st.jobs
    out = []
    for job_id in cmd.get("ids") or ():
        job = jobs.get(job_id)
        if job is not None and job.state != COMPLETED:
            out.append(with_state(job, now))
    return {"ok": True, "jobs": out}


def cmd_getjobs(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Newest id first; ``total`` counts every match before paging."""
    state = cmd.get("state")
    kind = _FILTERS.get(state.lower()) if isinstance(state, str) else None
    window = cmd.get("_window")
    if window is not None:
        # A scattered GETJOBS (no queue): the server merges every shard's newest `window`
        # jobs and pages the merged list itself, so no per-client cap applies here.
        limit, offset = window, 0
    else:
        limit = cmd.get("limit")
        limit = min(100 if limit is None else limit, st.config.max_getjobs_limit)
        offset = cmd.get("offset") or 0
    queue = cmd.get("queue")
    candidates: Iterable[Job]
    if queue is None:
        candidates = st.jobs.values()
    else:
        q = st.queues.get(queue)
        if q is None:
            return {"ok": True, "jobs": [], "total": 0}
        if kind == ACTIVE:
            candidates, kind = q.active.values(), None
        elif kind == FAILED:
            candidates, kind = q.dlq.values(), None
        elif kind == COMPLETED:
            candidates, kind = q.completed.values(), None
        else:
            candidates = [*q.jobs.values(), *q.completed.values()]
    match = _matcher(kind, now)
    matches = list(candidates) if match is None else [j for j in candidates if match(j)]
    page = nlargest(offset + limit, matches, key=_by_id)[offset:] if limit else []
    return {"ok": True, "jobs": [with_state(j, now) for j in page], "total": len(matches)}


def cmd_getjobcounts(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    if q is None:
        counts = {"waiting": 0, "active": 0, "delayed": 0, "completed": 0, "failed": 0}
    else:
        promote(q, now)
        waiting, delayed = q.counts()
        counts = {
            "waiting": waiting,
            "active": len(q.active),
            "delayed": delayed,
            "completed": len(q.completed),
            "failed": len(q.dlq),
        }
    reply: Reply = {"ok": True, **counts}
    reply["counts"] = counts
    return reply


def cmd_count(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    return {"ok": True, "count": 0 if q is None else q.n_waiting}


def cmd_waitjob(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply | None:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None:
        return err(JOB_NOT_FOUND)
    if job.state == COMPLETED:
        return {"ok": True} if job.result is None else {"ok": True, "result": job.result}
    if job.state == FAILED:
        return err(JOB_FAILED)
    timeout = cmd.get("timeout")
    if timeout is None:
        timeout = st.config.default_wait_timeout_ms
    if timeout <= 0:
        return err(wait_timeout_text(job_id, timeout))
    st.waiters.new(WAITJOB, token, conn, now + timeout, job_id=job_id, timeout=timeout)
    return None


def wait_timeout_text(job_id: int, timeout: int) -> str:
    return f"Timeout waiting for job {job_id} after {timeout}ms"


HANDLERS: dict[str, Handler] = {
    "GETJOB": cmd_getjob,
    "GETSTATE": cmd_getstate,
    "GETRESULT": cmd_getresult,
    "GETJOBBYCUSTOMID": cmd_getjobbycustomid,
    "GETJOBSBATCH": cmd_getjobsbatch,
    "GETJOBS": cmd_getjobs,
    "GETJOBCOUNTS": cmd_getjobcounts,
    "COUNT": cmd_count,
    "WAITJOB": cmd_waitjob,
}
