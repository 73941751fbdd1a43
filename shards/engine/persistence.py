"""Storage records of a shard: what changed since the last commit, and rebuilding from them.

Keys (values are msgpack):

=================  ==========================================================================
``j:<id>``         a job in any state, completed ones with their result (`Job.pack`)
``l:<id>``         a job's log, ``[[ts, message, level], ...]``
``q:<queue>``      queue settings ``[paused, rate_limit, concurrency]``
``c:<name>``       a cron (`Cron.pack`)
``d:<queue>:<id>`` a debounce window, its expiry (ms)
``k:<key>``        a KV entry (`KVStore`)
``m:seq``          the job id counter (ids are never reused)
``m:stats``        ``[total_pushed, total_completed, total_failed]``
=================  ==========================================================================

Delivery (PULL) writes nothing: a job active at a crash is rebuilt as waiting, in its old
place, which is the at-least-once recovery rule. Unique keys, custom ids and dependents are
derived from the job records.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgpack

from flashq.errors import StorageError

from .job import ACTIVE, COMPLETED, DEPS, FAILED, PARENT, WAITING, Job
from .job_codec import pack_job, unpack_job
from .lifecycle import child_done, dep_done, forget, release_parent_if_done
from .pqueue import delayed_entry, ready_entry
from .schedules import KEY_PREFIX as CRON_PREFIX
from .schedules import Cron

if TYPE_CHECKING:
    from .state import ShardState

logger = logging.getLogger(__name__)


def take_changes(st: ShardState) -> dict[str, bytes | None]:
    """Every record changed since the last call (None = delete); each dirty job packed once."""
    changes = st.changes
    st.changes = {}
    jobs = st.jobs
    for job_id in st.dirty:
        job = jobs.get(job_id)
        changes[f"j:{job_id}"] = None if job is None else pack_job(job)
    st.dirty = set()
    if st.meta_dirty:
        st.meta_dirty = False
        changes["m:seq"] = msgpack.packb(st.seq)
        changes["m:stats"] = msgpack.packb([st.total_pushed, st.total_completed, st.total_failed])
    kv_changes = st.kv.take_changes()
    if kv_changes:
        changes.update(kv_changes)
    return changes


def load(st: ShardState, records: Mapping[str, bytes], now: int) -> None:
    """Rebuild the shard from its committed records (into a fresh state).

    The cyclic garbage collector is paused meanwhile (and restored): a million-record load
    allocates millions of long-lived objects, and collecting them as they arrive would
    repeatedly traverse everything already loaded, for nothing.

    Raises:
        StorageError: a record cannot be decoded.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        loaded: list[Job] = []
        kv_records: dict[str, bytes] = {}
        shared: dict[Any, Any] = {}
        for key, raw in records.items():
            try:
                if key.startswith("j:"):
                    job = unpack_job(int(key[2:]), raw)
                    share_values(job, shared)
                    loaded.append(job)
                elif key.startswith("k:"):
                    kv_records[key] = raw
                else:
                    _load_record(st, key, raw, now)
            except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
                raise StorageError(f"shard {st.shard}: corrupt record {key!r}: {exc}") from exc
        st.kv.load(kv_records)
        _rebuild_jobs(st, loaded, now)
        _resume_cross_shard(st, now)
    finally:
        if gc_was_enabled:
            gc.enable()
    st.events.clear()
    st.resolved.clear()
    st.wake.clear()


def share_values(job: Job, shared: dict[Any, Any]) -> None:
    """Point a loaded job's queue name and push time at one object per distinct value.

    Unpacking gives every record its own copies, where pushing shared one queue name and
    one timestamp per batch: ~90 bytes a job, ~100 MB of RSS for a million after a
    restart. Done as each job is read, so the copies are freed before the next is made.
    """
    queue = job.queue
    job.queue = shared.setdefault(queue, queue)
    created = job.created_at
    if job.run_at == created:
        job.created_at = job.run_at = shared.setdefault(created, created)


def _load_record(st: ShardState, key: str, raw: bytes, now: int) -> None:
    """Every record but jobs and KV entries."""
    prefix = key[:2]
    if prefix == "l:":
        st.logs[int(key[2:])] = msgpack.unpackb(raw, raw=False)
    elif prefix == "q:":
        st.queue(key[2:]).load_settings(raw, now)
    elif prefix == CRON_PREFIX:
        name = key[len(CRON_PREFIX) :]
        st.crons[name] = Cron.unpack(name, raw)
    elif prefix == "d:":
        queue, _, debounce_id = key[2:].partition(":")
        until = msgpack.unpackb(raw)
        if until > now:
            st.debounce[(queue, debounce_id)] = until
        else:
            st.changes[key] = None
    elif key == "m:seq":
        st.seq = max(st.seq, msgpack.unpackb(raw))
    elif key == "m:stats":
        st.total_pushed, st.total_completed, st.total_failed = msgpack.unpackb(raw)
    else:
        logger.warning("shard %d: ignoring unknown record %r", st.shard, key)


def _rebuild_jobs(st: ShardState, loaded: list[Job], now: int) -> None:
    nshards = st.nshards
    completed: list[Job] = []
    failed: list[Job] = []
    touched = set()
    for job in loaded:
        job_id = job.id
        st.jobs[job_id] = job
        q = st.queue(job.queue)
        q.listed = True
        touched.add(q)
        state = job.state
        if state == COMPLETED:
            completed.append(job)
            continue
        q.jobs[job_id] = job
        if state == FAILED:
            failed.append(job)
        else:
            if job.unique_key is not None:
                st.hold_unique(job)
        st.hold_custom(job)
        if state == ACTIVE:
            job.state = state = WAITING  # delivered before the crash: deliver again
            job.started_at = 0
            job.last_heartbeat = 0
        if state == WAITING:
            q.n_waiting += 1
            if job.run_at > now:
                q.delayed.extend_unordered(job, delayed_entry(job))
            else:
                q.ready.extend_unordered(job, ready_entry(job))
        elif state == DEPS:
            for dep in job.pending or ():
                st.dependents.setdefault(dep, set()).add(job_id)
        elif state not in (PARENT, FAILED):
            raise ValueError(f"job {job_id}: unknown state {state!r}")
    if st.jobs:
        st.seq = max(st.seq, max(st.jobs) // nshards)
    for q in touched:
        q.ready.restore()
        q.delayed.restore()
    failed.sort(key=lambda j: (j.failed_at, j.id))
    for job in failed:
        st.queues[job.queue].dlq[job.id] = job
    completed.sort(key=lambda j: (j.completed_at, j.id))
    for job in completed:
        st.completed[job.id] = job
        st.queues[job.queue].completed[job.id] = job
    while len(st.completed) > st.config.max_completed:
        forget(st, next(iter(st.completed.values())), None)


def _resume_cross_shard(st: ShardState, now: int) -> None:
    """Re-send what may have been lost with the outbox at the crash (receivers are idempotent)
    and apply what this shard can decide alone."""
    for dep in list(st.dependents):
        if st.owns(dep):
            dep_job = st.jobs.get(dep)
            if dep_job is not None and dep_job.state == COMPLETED:
                dep_done(st, dep, now)
        else:
            st.outbox.append((dep % st.nshards, {"cmd": "_WATCH", "id": dep, "notify": st.shard}))
    for job in list(st.completed.values()):
        for shard in job.watchers or ():
            st.outbox.append((shard, {"cmd": "_DEPDONE", "id": job.id}))
        parent_id = job.parent_id
        if parent_id is not None:
            if st.owns(parent_id):
                child_done(st, parent_id, job.id, now)
            else:
                st.outbox.append(
                    (
                        parent_id % st.nshards,
                        {"cmd": "_CHILDDONE", "parent_id": parent_id, "child_id": job.id},
                    )
                )
    for job in [j for j in st.jobs.values() if j.state == PARENT]:
        release_parent_if_done(st, job, now)
