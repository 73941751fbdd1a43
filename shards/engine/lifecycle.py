"""Job transitions: complete, fail, retry, dead-letter, forget, and what completion unblocks.

Every way out of a state releases what that state held (PROTOCOL §6.6 fixes): the unique key
on completion, DLQ, drop and removal; the concurrency slot and the group on every way out of
active (`ShardState.deactivate`). Cross-shard consequences (a dependency or a flow child in
another shard completed) leave through the outbox as internal commands (see `flows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flashq.histogram import Histogram

from .job import COMPLETED, DEPS, FAILED, PARENT, UNKNOWN, Job
from .state import err

if TYPE_CHECKING:
    from .state import ShardState

JOB_NOT_FOUND = "Job not found"
JOB_FAILED = "Job failed"
PARENT_READY = "All children completed, parent job ready"


def retry_run_at(job: Job, now: int) -> int:
    """After the k-th failure: ``backoff * 2**min(k, 10)`` from now, or keep the place."""
    if job.backoff > 0:
        delay: int = job.backoff * 2 ** min(job.attempts, 10)
        return now + delay
    return job.run_at


def forget(st: ShardState, job: Job, error: str | None = JOB_NOT_FOUND) -> None:
    """Remove a job entirely (state ``unknown`` afterwards); WAITJOB callers get `error`."""
    st.unlink(job)
    job_id = job.id
    del st.jobs[job_id]
    st.queues[job.queue].jobs.pop(job_id, None)
    st.release_unique(job)
    st.release_custom(job)
    st.drop_logs(job_id)
    st.dirty.add(job_id)
    job.state = UNKNOWN
    if error is not None:
        st.resolve_job_waiters(job_id, err(error))


def complete(st: ShardState, job: Job, now: int, result: Any) -> None:
    """ACK/ACKB of an active job (the hot path: cheap checks inline before any call)."""
    q = st.queues[job.queue]
    job_id = job.id
    st.deactivate(q, job)
    del q.jobs[job_id]
    if job.unique_key is not None:
        st.release_unique(job)
    if job.custom_id is not None:
        st.release_custom(job)
    job.completed_at = now
    st.total_completed += 1
    latency = max(0, now - job.created_at)
    st.latency_sum += latency
    st.latency_count += 1
    hist = q.latency
    if hist is None:
        hist = q.latency = Histogram()
    hist.observe(latency)
    st.meta_dirty = True
    st.dirty.add(job_id)
    if st.publishing:
        event = {"event_type": "completed", "queue": q.name, "job_id": job_id, "timestamp": now}
        if result is not None:
            event["data"] = result
        st.events.append(event)
    if job_id in st.waiters.by_job:
        reply = {"ok": True} if result is None else {"ok": True, "result": result}
        st.resolve_job_waiters(job_id, reply)
    if job.parent_id is not None or job.watchers or job_id in st.dependents:
        notify_completed(st, job, now)
    if job.remove_on_complete:
        del st.jobs[job_id]
        st.drop_logs(job_id)
        job.state = UNKNOWN
        return
    job.state = COMPLETED
    job.result = result
    st.completed[job_id] = job
    q.completed[job_id] = job
    keep = job.keep_completed_count
    if keep > 0:
        while len(q.completed) > keep:
            evict_completed(st, next(iter(q.completed.values())))
    if len(st.completed) > st.config.max_completed:
        evict_completed(st, next(iter(st.completed.values())))


def evict_completed(st: ShardState, job: Job) -> None:
    """`forget` for a completed job that retention drops (once per completion at steady
    state): its unique key and custom id already went when it completed."""
    job_id = job.id
    del st.completed[job_id]
    st.queues[job.queue].completed.pop(job_id, None)
    del st.jobs[job_id]
    if job_id in st.logs:
        st.drop_logs(job_id)
    st.dirty.add(job_id)
    job.state = UNKNOWN


def to_dlq(st: ShardState, job: Job, now: int, error: str | None, *, publish: bool) -> None:
    """Dead-letter a job (from waiting, delayed or active); WAITJOB callers get "Job failed"."""
    q = st.queues[job.queue]
    st.unlink(job)
    st.release_unique(job)
    job.state = FAILED
    job.failed_at = now
    if error is not None:
        job.progress_msg = error
    q.dlq[job.id] = job
    st.dirty.add(job.id)
    st.total_failed += 1
    st.meta_dirty = True
    st.resolve_job_waiters(job.id, err(JOB_FAILED))
    if publish:
        publish_failed(st, job, now, error)


def publish_failed(st: ShardState, job: Job, now: int, error: str | None) -> None:
    if error is None:
        st.event("failed", job, now)
    else:
        st.event("failed", job, now, error=error)


def fail_final(st: ShardState, job: Job, now: int, error: str | None) -> None:
    """A job out of attempts: the DLQ, or nowhere with remove_on_fail."""
    if job.remove_on_fail:
        st.total_failed += 1
        st.meta_dirty = True
        publish_failed(st, job, now, error)
        forget(st, job, JOB_FAILED)
    else:
        to_dlq(st, job, now, error, publish=True)


def retry(st: ShardState, job: Job, now: int, run_at: int) -> None:
    """Active -> waiting (or delayed when run_at is in the future)."""
    st.deactivate(st.queues[job.queue], job)
    job.started_at = 0
    job.run_at = run_at
    st.enqueue(job, now)
    st.dirty.add(job.id)


def count_failure(st: ShardState, job: Job, now: int, message: str | None) -> None:
    """FAIL and processing timeout: one more attempt used, then DLQ or retry with backoff."""
    job.attempts += 1
    if job.max_attempts > 0 and job.attempts >= job.max_attempts:
        fail_final(st, job, now, message)
    else:
        job.progress_msg = message
        retry(st, job, now, retry_run_at(job, now))


# -- dependencies and flows ----------------------------------------------------------------


def notify_completed(st: ShardState, job: Job, now: int) -> None:
    """Release what waited for `job`: local dependents, other shards, the flow parent."""
    job_id = job.id
    if job_id in st.dependents:
        dep_done(st, job_id, now)
    if job.watchers:
        for shard in job.watchers:
            st.outbox.append((shard, {"cmd": "_DEPDONE", "id": job_id}))
    parent_id = job.parent_id
    if parent_id is not None:
        if st.owns(parent_id):
            child_done(st, parent_id, job_id, now)
        else:
            st.outbox.append(
                (
                    parent_id % st.nshards,
                    {"cmd": "_CHILDDONE", "parent_id": parent_id, "child_id": job_id},
                )
            )


def dep_done(st: ShardState, dep_id: int, now: int) -> None:
    """Dependency `dep_id` completed: jobs waiting only for it become waiting now."""
    waiting = st.dependents.pop(dep_id, None)
    if not waiting:
        return
    for job_id in sorted(waiting):
        job = st.jobs.get(job_id)
        if job is None or job.state != DEPS or not job.pending:
            continue
        job.pending.discard(dep_id)
        st.dirty.add(job_id)
        if not job.pending:
            job.pending = None
            st.enqueue(job, now)


def child_done(st: ShardState, parent_id: int, child_id: int, now: int) -> None:
    """A flow child completed; the parent becomes waiting when the last one does."""
    parent = st.jobs.get(parent_id)
    if parent is None or parent.state != PARENT:
        return
    done = parent.done_children
    if done is None:
        done = parent.done_children = set()
    if child_id in done:
        return
    done.add(child_id)
    st.dirty.add(parent_id)
    release_parent_if_done(st, parent, now)


def release_parent_if_done(st: ShardState, parent: Job, now: int) -> None:
    done = parent.done_children
    if parent.children_total > 0 and done is not None and len(done) >= parent.children_total:
        st.enqueue(parent, now)
        st.dirty.add(parent.id)
        st.add_log(parent.id, now, PARENT_READY, "info")


def is_live(job: Job | None) -> bool:
    """A job that still has a stored Job object (anything but completed)."""
    return job is not None and job.state != COMPLETED


def wait_for_deps(st: ShardState, job: Job) -> bool:
    """Park a new job on its uncompleted dependencies; False when none is left to wait for.

    A dependency of this shard is checked here; one of another shard is asked to report its
    completion (``_WATCH``, answered at once when it is already completed).
    """
    pending: set[int] = set()
    for dep in set(job.depends_on):
        if st.owns(dep):
            dep_job = st.jobs.get(dep)
            if dep_job is not None and dep_job.state == COMPLETED:
                continue
        else:
            st.outbox.append((dep % st.nshards, {"cmd": "_WATCH", "id": dep, "notify": st.shard}))
        pending.add(dep)
    if not pending:
        return False
    job.pending = pending
    job.state = DEPS
    for dep in pending:
        st.dependents.setdefault(dep, set()).add(job.id)
    return True
