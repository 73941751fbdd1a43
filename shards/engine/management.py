"""Job management commands (PROTOCOL §2.6): CANCEL ... PARTIAL.

PROGRESS, LOG and PARTIAL on an active job count as heartbeats: a worker that reports
progress is alive, and upstream's rule (only HEARTBEAT counts) dead-letters long jobs of SDK
workers that never heartbeat (§6.6).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from .job import ACTIVE, COMPLETED, FAILED, WAITING, Job
from .lifecycle import forget, to_dlq
from .state import Handler, Reply, err, ok

if TYPE_CHECKING:
    from .state import ShardState


def heartbeat(job: Job, now: int) -> None:
    job.last_heartbeat = now
    job.stall_count = 0


def cmd_cancel(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found")
    if job.state == COMPLETED or job.state == FAILED:
        return err(f"Job {job_id} cannot be cancelled (already completed/failed)")
    forget(st, job)
    return ok()


def cmd_progress(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found in processing")
    progress = min(cmd["progress"], 100)
    message = cmd.get("message")
    job.progress = progress
    job.progress_msg = message
    heartbeat(job, now)
    st.dirty.add(job_id)
    if message is None:
        st.event("progress", job, now, progress=progress)
    else:
        st.event("progress", job, now, progress=progress, data={"message": message})
    return ok()


def cmd_getprogress(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found")
    return {
        "ok": True,
        "progress": {"id": job_id, "progress": job.progress, "message": job.progress_msg},
    }


def cmd_updatejob(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None or job.state == COMPLETED:
        return err(f"Job {job_id} not found")
    job.data = cmd.get("data")
    st.dirty.add(job_id)
    return ok()


def cmd_changepriority(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None or job.state == COMPLETED:
        return err(f"Job {job_id} not found or cannot change priority")
    priority = cmd["priority"]
    if priority == job.priority:
        return ok()
    job.priority = priority
    if job.state == WAITING:
        st.resort(job)
    st.dirty.add(job_id)
    return ok()


def cmd_movetodelayed(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not in processing")
    st.deactivate(st.queues[job.queue], job)
    job.run_at = now + (cmd.get("delay") or 0)
    job.started_at = 0
    job.progress = 0
    job.progress_msg = None
    st.enqueue(job, now)
    st.dirty.add(job_id)
    return ok()


def cmd_promote(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None or job.state != WAITING:
        return err(f"Job {job_id} not found or not in delayed state")
    if job.run_at <= now:
        return err(f"Job {job_id} is not delayed")
    st.unlink(job)
    job.run_at = now
    st.enqueue(job, now)
    st.dirty.add(job_id)
    return ok()


def cmd_discard(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None or (job.state != WAITING and job.state != ACTIVE):
        return err(f"Job {job_id} not found or already in DLQ/completed")
    to_dlq(st, job, now, None, publish=False)
    return ok()


def cmd_heartbeat(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not in processing")
    heartbeat(job, now)
    return ok()


def cmd_log(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.jobs.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found")
    level = cmd.get("level")
    st.add_log(job_id, now, cmd["message"], "info" if level is None else level)
    if job.state == ACTIVE:
        heartbeat(job, now)
    return ok()


def cmd_getlogs(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    entries = st.logs.get(job_id, ())
    logs = [{"timestamp": ts, "message": msg, "level": level} for ts, msg, level in entries]
    return {"ok": True, "id": job_id, "logs": logs}


def cmd_partial(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found in processing")
    heartbeat(job, now)
    chunk: dict[str, Any] = {"chunk": cmd.get("data")}
    index = cmd.get("index")
    if index is not None:
        chunk["index"] = index
    st.event("partial", job, now, data=chunk)
    return ok()


HANDLERS: dict[str, Handler] = {
    "CANCEL": cmd_cancel,
    "PROGRESS": cmd_progress,
    "GETPROGRESS": cmd_getprogress,
    "UPDATEJOB": cmd_updatejob,
    "CHANGEPRIORITY": cmd_changepriority,
    "MOVETODELAYED": cmd_movetodelayed,
    "PROMOTE": cmd_promote,
    "DISCARD": cmd_discard,
    "HEARTBEAT": cmd_heartbeat,
    "LOG": cmd_log,
    "GETLOGS": cmd_getlogs,
    "PARTIAL": cmd_partial,
}
