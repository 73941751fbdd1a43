"""The memory of one shard, its pending effects, and the primitive moves between structures.

`ShardState` holds every index (jobs, queues, unique keys, custom ids, dependents ...) and the
effects accumulated since the process last drained them (dirty records, events, resolved
waiters, outbox). Its methods are the small, invariant-keeping moves (put a job in its queue,
take it out, activate, deactivate); `lifecycle` composes them into job transitions and the
command modules compose those.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import msgpack

from .job import ACTIVE, COMPLETED, DEPS, FAILED, WAITING, Job
from .kv import KVStore
from .pqueue import JobHeap, delayed_entry, ready_entry
from .queue import QueueState
from .waiters import WaiterBook

if TYPE_CHECKING:
    from .config import EngineConfig
    from .schedules import Cron

Reply = dict[str, Any]
Handler = Callable[
    ["ShardState", Mapping[str, Any], int, Hashable | None, int | None], Reply | None
]
"""A command handler: (state, normalized command, now_ms, waiter token, connection) -> reply,
or None when a blocking command parked a waiter."""


def ok() -> Reply:
    """A fresh success reply (callers may add fields; the process adds reqId)."""
    return {"ok": True}


def err(text: str) -> Reply:
    return {"ok": False, "error": text}


class ShardState:
    """All state of one logical shard plus the effects not yet taken by the process."""

    def __init__(self, shard: int, config: EngineConfig) -> None:
        self.shard = shard
        self.config = config
        self.nshards = config.nshards
        self.seq = 0
        self.jobs: dict[int, Job] = {}  # every job still known, completed ones included
        self.queues: dict[str, QueueState] = {}
        self.active: dict[int, Job] = {}
        # completion order, capped by max_completed; OrderedDict: the oldest is removed over
        # and over, and a plain dict would rescan its deleted front slots each time
        self.completed: OrderedDict[int, Job] = OrderedDict()
        self.unique: dict[tuple[str, str], int] = {}  # (queue, unique_key) -> holder
        self.custom: dict[str, dict[str, int]] = {}  # custom id -> {queue: job id}
        self.debounce: dict[tuple[str, str], int] = {}  # (queue, debounce_id) -> expiry
        self.logs: dict[int, list[list[Any]]] = {}  # job id -> [[ts, message, level]]
        self.dependents: dict[int, set[int]] = {}  # dependency id -> waiting job ids
        self.crons: dict[str, Cron] = {}
        self.kv = KVStore()
        self.waiters = WaiterBook()
        self.waiting_queues: set[QueueState] = set()  # queues with live pull waiters
        # counters (persisted as m:stats)
        self.total_pushed = 0
        self.total_completed = 0
        self.total_failed = 0
        self.latency_sum = 0
        self.latency_count = 0
        self.jobs_per_second = 0.0
        self.window_start = -1
        self.window_completed = 0
        # effects
        self.dirty: set[int] = set()
        self.changes: dict[str, bytes | None] = {}
        self.meta_dirty = False
        self.events: list[dict[str, Any]] = []
        #: Off while nobody listens (the shard process is told): no event is built at all.
        self.publishing = True
        self.resolved: list[tuple[Hashable, Reply]] = []
        self.outbox: list[tuple[int, dict[str, Any]]] = []
        self.wake: set[QueueState] = set()
        #: Plain jobs pushed and committed but not built and queued yet (`push.index_plain`):
        #: (queue, first id, payloads, created_at). Every engine entry point settles them
        #: first, so no command ever sees the difference.
        self.unindexed: list[tuple[QueueState, int, list[Any], int]] = []

    # -- ids, queues, effects ------------------------------------------------------------

    def next_id(self) -> int:
        self.seq += 1
        self.meta_dirty = True
        return self.seq * self.nshards + self.shard

    def queue(self, name: str) -> QueueState:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState(name)
        return q

    def owns(self, job_id: int) -> bool:
        return job_id % self.nshards == self.shard

    def event(self, kind: str, job: Job, now: int, **extra: Any) -> None:
        if not self.publishing:
            return
        ev = {"event_type": kind, "queue": job.queue, "job_id": job.id, "timestamp": now}
        if extra:
            ev.update(extra)
        self.events.append(ev)

    def resolve_job_waiters(self, job_id: int, reply: Reply) -> None:
        """Answer every WAITJOB on `job_id` with (a copy of) `reply`."""
        if job_id in self.waiters.by_job:
            for w in self.waiters.take_job_waiters(job_id):
                self.resolved.append((w.token, dict(reply)))

    def wake_queue(self, q: QueueState) -> None:
        if q.live_waiters:
            self.wake.add(q)

    def save_queue_settings(self, q: QueueState) -> None:
        self.changes["q:" + q.name] = q.settings_record()

    # -- unique keys, custom ids, logs -----------------------------------------------------

    def hold_unique(self, job: Job) -> None:
        """Take the job's unique key if it is free (RETRYDLQ may find it taken: then not)."""
        if job.unique_key is not None:
            self.unique.setdefault((job.queue, job.unique_key), job.id)

    def release_unique(self, job: Job) -> None:
        if job.unique_key is not None:
            key = (job.queue, job.unique_key)
            if self.unique.get(key) == job.id:
                del self.unique[key]

    def hold_custom(self, job: Job) -> None:
        if job.custom_id is not None:
            self.custom.setdefault(job.custom_id, {})[job.queue] = job.id

    def release_custom(self, job: Job) -> None:
        cid = job.custom_id
        if cid is not None:
            by_queue = self.custom.get(cid)
            if by_queue is not None and by_queue.get(job.queue) == job.id:
                del by_queue[job.queue]
                if not by_queue:
                    del self.custom[cid]

    def custom_job(self, queue: str, custom_id: str) -> Job | None:
        """The live (not completed) job holding `custom_id` in `queue`."""
        by_queue = self.custom.get(custom_id)
        if by_queue is None:
            return None
        job_id = by_queue.get(queue)
        job = self.jobs.get(job_id) if job_id is not None else None
        return job if job is not None and job.state != COMPLETED else None

    def add_log(self, job_id: int, now: int, message: str, level: str) -> None:
        entries = self.logs.setdefault(job_id, [])
        entries.append([now, message, level])
        excess = len(entries) - self.config.max_job_logs
        if excess > 0:
            del entries[:excess]
        self.changes[f"l:{job_id}"] = msgpack.packb(entries, use_bin_type=True)

    def drop_logs(self, job_id: int) -> None:
        if self.logs.pop(job_id, None) is not None:
            self.changes[f"l:{job_id}"] = None

    # -- moves between structures ----------------------------------------------------------

    def enqueue(self, job: Job, now: int) -> None:
        """Make `job` waiting in its queue: the ready heap if due, else the delayed heap."""
        q = self.queues[job.queue]
        job.state = WAITING
        q.n_waiting += 1
        if job.run_at > now:
            q.delayed.push(job, delayed_entry(job))
        else:
            q.ready.push(job, ready_entry(job))
            if q.live_waiters:
                self.wake.add(q)

    def unlink(self, job: Job) -> None:
        """Take `job` out of the structure its state puts it in (it stays in `jobs`)."""
        q = self.queues[job.queue]
        state = job.state
        if state == WAITING:
            q.n_waiting -= 1
            heap = job.heap
            if heap is not None:
                heap.discard(job)
                group = job.group_id
                if group is not None:
                    if heap is q.ready:
                        self.unpark(q, group)
                    elif heap is not q.delayed and not heap.live:
                        q.parked.pop(group, None)
        elif state == ACTIVE:
            self.deactivate(q, job)
        elif state == FAILED:
            q.dlq.pop(job.id, None)
        elif state == DEPS:
            for dep in job.pending or ():
                waiting = self.dependents.get(dep)
                if waiting is not None:
                    waiting.discard(job.id)
                    if not waiting:
                        del self.dependents[dep]
            job.pending = None
        elif state == COMPLETED:
            self.completed.pop(job.id, None)
            q.completed.pop(job.id, None)

    def activate(self, q: QueueState, job: Job, now: int) -> None:
        """Deliver a job just popped from a waiting heap."""
        q.n_waiting -= 1
        job.state = ACTIVE
        job.started_at = now
        job.last_heartbeat = now
        q.active[job.id] = job
        self.active[job.id] = job
        if job.group_id is not None:
            q.active_groups[job.group_id] = job.id

    def deactivate(self, q: QueueState, job: Job) -> None:
        """Leave the active set: frees the concurrency slot and the group."""
        del q.active[job.id]
        self.active.pop(job.id, None)
        group = job.group_id
        if group is not None and q.active_groups.get(group) == job.id:
            del q.active_groups[group]
            self.unpark(q, group)
        if q.live_waiters:
            self.wake.add(q)

    def resort(self, job: Job) -> None:
        """A waiting job's priority changed: move its entry to where the new key belongs.

        Keeps the group invariant: while a group has no active job, its best waiting job is in
        the ready heap (a parked job that became the best comes back; see `unpark`).
        """
        q = self.queues[job.queue]
        heap = job.heap
        if heap is None or heap is q.delayed:
            return  # the delayed order ignores priority; re-sorted when it becomes due
        heap.discard(job)
        group = job.group_id
        if heap is q.ready or group is None or group in q.active_groups:
            heap.push(job, ready_entry(job))
        else:
            if not heap.live:
                q.parked.pop(group, None)
            q.ready.push(job, ready_entry(job))
        if group is not None:
            self.unpark(q, group)  # no-op while the group is busy

    def park(self, q: QueueState, job: Job) -> None:
        """Set aside a job popped while its group is busy."""
        group = job.group_id
        assert group is not None
        heap = q.parked.get(group)
        if heap is None:
            heap = q.parked[group] = JobHeap()
        heap.push(job, ready_entry(job))

    def unpark(self, q: QueueState, group: str) -> None:
        """The group is free (or lost its ready job): bring its best parked job back.

        Invariant: while `group` has no active job, its best waiting job is in the ready heap.
        One parked job per release is enough (only one job of a group can be taken at a time),
        so a long chain of jobs of one group costs O(log n) per job, not a rescan.
        """
        if group in q.active_groups:
            return
        heap = q.parked.get(group)
        if heap is None:
            return
        job = heap.pop()
        if not heap.live:
            del q.parked[group]
        if job is not None:
            q.ready.push(job, ready_entry(job))
            if q.live_waiters:
                self.wake.add(q)
