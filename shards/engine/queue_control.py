"""Queue control (PROTOCOL §2.7): pause, limits, drain, obliterate, clean; pub/sub no-ops.

Settings (paused, rate limit, concurrency) are persisted as one ``q:<name>`` record, deleted
when all are back to their defaults. None of these commands validates the queue name.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .job import COMPLETED, WAITING, Job
from .lifecycle import forget
from .state import Handler, Reply, err, ok

if TYPE_CHECKING:
    from .state import ShardState

_CLEAN_STATES = ("waiting", "delayed", "completed", "failed")
_by_id = attrgetter("id")


def cmd_pause(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queue(cmd["queue"])
    if not q.paused:
        q.paused = True
        st.save_queue_settings(q)
    return ok()


def cmd_resume(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    if q is not None and q.paused:
        q.paused = False
        st.save_queue_settings(q)
        st.wake_queue(q)
    return ok()


def cmd_ispaused(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    return {"ok": True, "paused": q is not None and q.paused}


def _forget_all(st: ShardState, jobs: list[Job]) -> int:
    for job in jobs:
        forget(st, job)
    return len(jobs)


def cmd_drain(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Remove waiting and delayed jobs; the queue leaves LISTQUEUES until the next push."""
    q = st.queues.get(cmd["queue"])
    if q is None:
        return {"ok": True, "count": 0}
    count = _forget_all(st, [j for j in q.jobs.values() if j.state == WAITING])
    q.listed = False
    return {"ok": True, "count": count}


def cmd_obliterate(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Remove every job of the queue (active ones too), its settings and its crons.

    ``count`` is the number of non-completed jobs removed (upstream keeps completion records;
    we drop them too, since nothing could reach them through the queue any more).
    """
    name = cmd["queue"]
    for cron_name in [n for n, c in st.crons.items() if c.queue == name]:
        del st.crons[cron_name]
        st.changes["c:" + cron_name] = None
    q = st.queues.get(name)
    if q is None:
        return {"ok": True, "count": 0}
    count = _forget_all(st, list(q.jobs.values()))
    for job in list(q.completed.values()):
        forget(st, job, None)
    had_settings = q.has_settings()
    q.paused = False
    q.set_rate_limit(None, now)
    q.concurrency = None
    q.listed = False
    if had_settings:
        st.save_queue_settings(q)
    return {"ok": True, "count": count}


def cmd_clean(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Remove jobs of one state older than `grace` (oldest first, at most `limit`).

    Age is measured from created_at, except for completed jobs: from completed_at. `waiting`
    and `delayed` are distinct, and `completed` honours the queue and the grace (§6.6 fixes).
    """
    state = str(cmd.get("state") or "").lower()
    if state not in _CLEAN_STATES:
        return err("Invalid state. Use: waiting, delayed, completed, failed")
    q = st.queues.get(cmd["queue"])
    if q is None:
        return {"ok": True, "count": 0}
    cutoff = now - (cmd.get("grace") or 0)
    if state == "completed":
        victims = [j for j in q.completed.values() if j.completed_at <= cutoff]
    elif state == "failed":
        victims = [j for j in q.dlq.values() if j.created_at <= cutoff]
    else:
        delayed = state == "delayed"
        victims = [
            j
            for j in q.jobs.values()
            if j.state == WAITING and (j.run_at > now) == delayed and j.created_at <= cutoff
        ]
    victims.sort(key=_by_id)
    limit = cmd.get("limit")
    if limit is not None:
        del victims[limit:]
    for job in victims:
        forget(st, job, None if job.state == COMPLETED else "Job not found")
    return {"ok": True, "count": len(victims)}


def cmd_ratelimit(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queue(cmd["queue"])
    q.set_rate_limit(cmd["limit"], now)
    st.save_queue_settings(q)
    st.wake_queue(q)
    return ok()


def cmd_ratelimitclear(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    if q is not None and q.rate_limit is not None:
        q.set_rate_limit(None, now)
        st.save_queue_settings(q)
        st.wake_queue(q)
    return ok()


def cmd_setconcurrency(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Max active jobs; counts the jobs really active (upstream restarts its counter at 0)."""
    q = st.queue(cmd["queue"])
    q.concurrency = cmd["limit"]
    st.save_queue_settings(q)
    st.wake_queue(q)
    return ok()


def cmd_clearconcurrency(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = st.queues.get(cmd["queue"])
    if q is not None and q.concurrency is not None:
        q.concurrency = None
        st.save_queue_settings(q)
        st.wake_queue(q)
    return ok()


def cmd_noop(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """SUBSCRIBE/UNSUBSCRIBE: accepted, nothing is ever pushed on TCP (PROTOCOL §2.12)."""
    return ok()


HANDLERS: dict[str, Handler] = {
    "PAUSE": cmd_pause,
    "RESUME": cmd_resume,
    "ISPAUSED": cmd_ispaused,
    "DRAIN": cmd_drain,
    "OBLITERATE": cmd_obliterate,
    "CLEAN": cmd_clean,
    "RATELIMIT": cmd_ratelimit,
    "RATELIMITCLEAR": cmd_ratelimitclear,
    "SETCONCURRENCY": cmd_setconcurrency,
    "CLEARCONCURRENCY": cmd_clearconcurrency,
    "SUBSCRIBE": cmd_noop,
    "UNSUBSCRIBE": cmd_noop,
}
