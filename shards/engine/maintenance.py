"""Timer work: processing timeouts and stalls (timeout tick), retention (cleanup tick).

Stall rule: an active job with no heartbeat (HEARTBEAT, PROGRESS, LOG or PARTIAL) for
``stall_timeout`` (0 = 30 s) is requeued in its old place with ``stall_count + 1`` and its
slot and group freed; the third consecutive detection dead-letters it instead. Upstream leaves
a stalled job active and holding its slot and group (§6.6); requeueing lets another worker
take over a job whose worker died without closing its connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lifecycle import count_failure, forget, retry, to_dlq
from .push import debounce_key

if TYPE_CHECKING:
    from .job import Job
    from .state import ShardState

TIMED_OUT = "Job timed out"


def check_active(st: ShardState, now: int) -> None:
    """Timeout tick: fail jobs past `timeout`, requeue or dead-letter stalled ones."""
    default_window = st.config.default_stall_timeout_ms
    for job in list(st.active.values()):
        if job.timeout and now - job.started_at > job.timeout:
            st.event("timeout", job, now)
            count_failure(st, job, now, TIMED_OUT)
        elif now - job.last_heartbeat > (job.stall_timeout or default_window):
            stalled(st, job, now)


def stalled(st: ShardState, job: Job, now: int) -> None:
    job.stall_count += 1
    count = job.stall_count
    st.add_log(job.id, now, f"Job stall detected (count: {count})", "warn")
    st.event("stalled", job, now)
    if count >= st.config.max_stalls:
        text = f"Job moved to DLQ after {count} stall detections"
        st.add_log(job.id, now, text, "error")
        to_dlq(st, job, now, text, publish=True)
    else:
        retry(st, job, now, job.run_at)


def cleanup(st: ShardState, now: int) -> None:
    """Cleanup tick: completed jobs past keep_completed_age, expired debounce windows and KV
    keys, and queue states that hold nothing any more."""
    expired = [
        job
        for job in st.completed.values()
        if job.keep_completed_age and now - job.completed_at > job.keep_completed_age
    ]
    for job in expired:
        forget(st, job, None)
    for key in [k for k, until in st.debounce.items() if until <= now]:
        del st.debounce[key]
        st.changes[debounce_key(*key)] = None
    st.kv.purge_expired(now)
    for name in [n for n, q in st.queues.items() if q.is_empty()]:
        del st.queues[name]
