"""PULL and PULLB (PROTOCOL §2.3): selection, limits, and blocked pullers.

Selection pops the ready heap (priority desc, run_at asc, id asc / desc for lifo) after moving
due delayed jobs into it. Paused queues, the concurrency limit and the rate limit (PULL and
PULLB alike, a §6.6 fix) cap how many jobs one pull may take; a job whose TTL ran out is dropped
on the way; a job whose group is busy is parked so it is not met again until the group frees.

A pull that gets nothing parks a `Waiter` on its queue. Waiters are served in FIFO order, after
every command that may have made jobs available (the engine collects such queues in
``ShardState.wake``) and on the wakeup tick (time-based: delayed jobs due, rate-limit tokens).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from heapq import heappop
from typing import TYPE_CHECKING, Any

from .job import ACTIVE, WAITING, Job
from .lifecycle import forget
from .pqueue import ready_entry
from .state import Handler, Reply
from .waiters import PULL, PULLB, PULLB_COMPACT, Waiter

if TYPE_CHECKING:
    from .queue import QueueState
    from .state import ShardState


def promote(q: QueueState, now: int) -> None:
    """Move every delayed job whose run_at has come into the ready heap."""
    delayed = q.delayed
    items = delayed.items
    if not items or items[0][0] > now:
        return
    ready = q.ready
    while items and items[0][0] <= now:
        entry = heappop(items)
        job: Job = entry[-1]
        if job.entry is not entry:
            continue
        delayed.live -= 1
        ready.push(job, ready_entry(job))


def select(st: ShardState, q: QueueState, now: int, count: int) -> list[Job]:
    """Deliver up to `count` jobs of `q` (possibly none) and make them active."""
    promote(q, now)  # even when paused: due jobs must not keep next_deadline in the past
    if q.paused or count <= 0:
        return []
    if q.concurrency is not None:
        count = min(count, q.concurrency - len(q.active))
    if q.rate_limit is not None:
        count = min(count, q.available_tokens(now))
    out: list[Job] = []
    if count <= 0 or not q.ready.live:
        return out
    ready = q.ready
    active_groups = q.active_groups
    while len(out) < count:
        job = ready.pop()
        if job is None:
            break
        group = job.group_id
        if job.ttl and now - job.created_at > job.ttl:
            forget(st, job)  # expired while waiting: dropped silently (PROTOCOL §2.3)
            if group is not None:
                st.unpark(q, group)  # it may have been its group's ready representative
            continue
        if group is not None and group in active_groups:
            st.park(q, job)
            continue
        st.activate(q, job, now)
        out.append(job)
    if out and q.rate_limit is not None:
        q.tokens -= len(out)
    return out


def pull_reply(kind: str, jobs: list[Job]) -> Reply:
    if kind == PULL:
        return {"ok": True, "job": jobs[0].wire() if jobs else None}
    if kind == PULLB_COMPACT:
        return {"ok": True, "jobs": [job.wire_compact() for job in jobs]}
    return {"ok": True, "jobs": [job.wire() for job in jobs]}


def serve(st: ShardState, q: QueueState, now: int) -> None:
    """Answer the queue's blocked pullers, oldest first, while jobs can be delivered."""
    while q.waiters:
        waiters = q.waiters  # pull_waiter_gone may replace the deque
        w = waiters[0]
        if w.done:
            waiters.popleft()
            continue
        jobs = select(st, q, now, w.count)
        if not jobs:
            break
        waiters.popleft()
        pull_waiter_gone(st, q)
        st.waiters.finish(w)
        st.resolved.append((w.token, pull_reply(w.kind, jobs)))


def serve_woken(st: ShardState, now: int) -> None:
    """Serve every queue some command marked as possibly able to deliver again."""
    while st.wake:
        woken = st.wake
        st.wake = set()
        for q in woken:
            serve(st, q, now)


def serve_all_waiting(st: ShardState, now: int) -> None:
    """Wakeup tick: time may have made delayed jobs due or refilled rate-limit tokens."""
    for q in list(st.waiting_queues):
        serve(st, q, now)


def pull_waiter_gone(st: ShardState, q: QueueState) -> None:
    """Bookkeeping when a queued pull waiter is answered, expires or is abandoned."""
    q.live_waiters -= 1
    if not q.live_waiters:
        st.waiting_queues.discard(q)
        q.waiters.clear()
    elif len(q.waiters) > 2 * q.live_waiters + 16:
        q.waiters = deque(w for w in q.waiters if not w.done)


def pull_timeout_reply(w: Waiter) -> Reply:
    return {"ok": True, "job": None} if w.kind == PULL else {"ok": True, "jobs": []}


def _pull(
    st: ShardState,
    name: str,
    count: int,
    timeout: int | None,
    now: int,
    token: Hashable | None,
    conn: int | None,
    kind: str,
) -> Reply | None:
    q = st.queues.get(name)
    if q is not None and count > 0:
        if q.live_waiters:
            serve(st, q, now)  # older pullers first (they may wait for rate-limit tokens)
        if not q.live_waiters:
            jobs = select(st, q, now, count)
            if jobs:
                return pull_reply(kind, jobs)
    if timeout is None:
        timeout = st.config.default_pull_timeout_ms
    if timeout <= 0:
        return pull_reply(kind, [])
    w = st.waiters.new(kind, token, conn, now + timeout, queue=name, count=count)
    if count > 0:  # PULLB count=0 just waits out its timeout
        q = st.queue(name)
        q.waiters.append(w)
        q.live_waiters += 1
        st.waiting_queues.add(q)
    return None


def cmd_pull(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply | None:
    return _pull(st, cmd["queue"], 1, cmd.get("timeout"), now, token, conn, PULL)


def cmd_pullb(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply | None:
    kind = PULLB_COMPACT if cmd.get("compact") else PULLB
    return _pull(st, cmd["queue"], cmd["count"] or 0, cmd.get("timeout"), now, token, conn, kind)


def requeue_undelivered(st: ShardState, job: Job, now: int) -> None:
    """A delivered job whose reply never left: back to waiting in its old place."""
    if job.state != ACTIVE:
        return
    q = st.queues[job.queue]
    st.deactivate(q, job)
    job.started_at = 0
    job.last_heartbeat = 0
    st.enqueue(job, now)
    assert job.state == WAITING


HANDLERS: dict[str, Handler] = {"PULL": cmd_pull, "PULLB": cmd_pullb}
