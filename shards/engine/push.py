"""PUSH and PUSHB (PROTOCOL §2.1-§2.2), and `create_job`, the one way a job is born.

Cron firings and flow children come through `create_job` too, so every job gets the same
checks (payload size, debounce, custom id, unique key) and the same bookkeeping.
"""

from __future__ import annotations

import operator
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import msgpack

from flashq.protocol.commands import JOB_OPTION_DEFAULTS
from flashq.protocol.limits import all_job_data_fit, validate_job_data, validate_queue_name

from .job import PARENT, Job
from .job_codec import pack_plain, plain_record_packer
from .lifecycle import wait_for_deps
from .pqueue import delayed_entry, ready_entry
from .state import Handler, Reply, err

_packer = msgpack.Packer(use_bin_type=True)
#: A PUSH whose options all hold what `normalize` filled in is a plain job (one C call).
_options = operator.itemgetter(*JOB_OPTION_DEFAULTS)
_DEFAULT_OPTIONS = tuple(JOB_OPTION_DEFAULTS.values())

if TYPE_CHECKING:
    from .queue import QueueState
    from .state import ShardState


def debounce_key(queue: str, debounce_id: str) -> str:
    """Storage key of a debounce window (queue names cannot contain ':')."""
    return f"d:{queue}:{debounce_id}"


def checked_queue(st: ShardState, name: str) -> QueueState | str:
    """The queue's state if `name` passes the PUSH name rule, else the error text."""
    q = st.queues.get(name)
    if q is not None and q.valid:
        return q
    error = validate_queue_name(name)
    if error is not None:
        return error
    q = st.queue(name)
    q.valid = True
    return q


def create_job(
    st: ShardState,
    q: QueueState,
    fields: Mapping[str, Any],
    now: int,
    *,
    publish: bool,
    parent_id: int | None = None,
    children: int = 0,
) -> int | str:
    """Run the PUSH steps for one job of queue `q`.

    `parent_id` marks a flow child; `children` > 0 makes a flow parent, which waits for that
    many children before it becomes waiting (state waiting-children, no `pushed` event yet).

    Returns:
        The new job's id, the id of the live job already holding the same custom id (nothing
        created), or the error text (payload too large, debounced, duplicate unique key).
    """
    get = fields.get
    data = get("data")
    error = validate_job_data(data)
    if error is not None:
        return error
    name = q.name
    debounce_id = get("debounce_id")
    if debounce_id is not None:
        until = st.debounce.get((name, debounce_id))
        if until is not None and now < until:
            return f"Debounced: job with id '{debounce_id}' was pushed recently"
    custom_id = get("job_id")
    if custom_id is not None:
        existing = st.custom_job(name, custom_id)
        if existing is not None:
            return existing.id
    unique_key = get("unique_key")
    if unique_key is not None and (name, unique_key) in st.unique:
        return f"Duplicate job with key: {unique_key}"
    if debounce_id is not None:
        ttl = get("debounce_ttl")
        until = now + (st.config.default_debounce_ttl_ms if ttl is None else ttl)
        st.debounce[(name, debounce_id)] = until
        st.changes[debounce_key(name, debounce_id)] = msgpack.packb(until)

    st.seq += 1
    job_id = st.seq * st.nshards + st.shard
    job = Job.from_push(job_id, name, now, fields, parent_id)
    if unique_key is not None:
        st.unique[(name, unique_key)] = job_id
    if custom_id is not None:
        st.hold_custom(job)
    if children > 0:
        admit(st, q, job)
        job.state = PARENT
        job.children_total = children
        job.done_children = set()
        return job_id
    if job.depends_on:
        admit(st, q, job)
        if wait_for_deps(st, job):
            return job_id
        enqueue_new(st, q, job, now, publish)
        return job_id
    admit(st, q, job)
    enqueue_new(st, q, job, now, publish)
    return job_id


def create_plain_job(
    st: ShardState, q: QueueState, data: Any, now: int, publish: bool
) -> int | str:
    """`create_job` for a job with no options at all (the common PUSHB element `{"data": …}`):
    no debounce, custom id or unique key to check, every field at its default."""
    error = validate_job_data(data)
    if error is not None:
        return error
    st.seq += 1
    job_id = st.seq * st.nshards + st.shard
    job = Job.plain(job_id, q.name, now, data)
    admit(st, q, job, pack_plain(q.name, now, data))
    enqueue_new(st, q, job, now, publish)
    return job_id


def push_plain_batch(
    st: ShardState, q: QueueState, datas: list[Any], now: int, publish: bool
) -> list[int]:
    """`create_plain_job` for a whole PUSHB whose elements are all `{"data": …}`: one size
    check for the batch, and each job's short storage record packed here from its payload
    (a later change in the same commit replaces it: `take_changes` packs dirty jobs last)."""
    if not all_job_data_fit(datas):
        results = [create_plain_job(st, q, data, now, publish) for data in datas]
        return [job_id for job_id in results if isinstance(job_id, int)]
    return push_fitting(st, q, datas, now, publish)


def push_fitting(
    st: ShardState, q: QueueState, datas: list[Any], now: int, publish: bool
) -> list[int]:
    """`push_plain_batch` once `all_job_data_fit(datas)` said every payload fits."""
    head, tail = plain_record_packer(q.name, now)
    pack = _packer.pack
    changes = st.changes
    nshards = st.nshards
    first = (st.seq + 1) * nshards + st.shard
    ids = list(range(first, first + len(datas) * nshards, nshards))
    for job_id, data in zip(ids, datas, strict=True):
        changes[f"j:{job_id}"] = head + pack(data) + tail
    st.seq += len(ids)
    st.total_pushed += len(ids)
    st.meta_dirty = True
    q.listed = True
    q.n_waiting += len(ids)
    if q.live_waiters:
        index_plain(st, q, first, datas, now)
        st.wake.add(q)
    else:
        st.unindexed.append((q, first, datas, now))
    if publish and st.publishing:
        name = q.name
        st.events.extend(pushed_event(name, i, now, d) for i, d in zip(ids, datas, strict=True))
    return ids


def index_plain(st: ShardState, q: QueueState, first: int, datas: list[Any], now: int) -> None:
    """Build and queue the jobs `push_plain_batch` committed: ids first, first + nshards, ...

    Deferred (`st.unindexed`) unless someone waits on the queue: the shard process replies
    once the records are committed and builds the jobs while the reply travels and the client
    prepares its next batch. Building them was ~40% of a PUSHB's time in the shard process,
    on the critical path of every sequential batch.
    """
    jobs = st.jobs
    qjobs = q.jobs
    push = q.ready.push
    name = q.name
    plain = Job.plain
    job_id = first
    nshards = st.nshards
    for data in datas:
        job = plain(job_id, name, now, data)
        jobs[job_id] = qjobs[job_id] = job
        push(job, ready_entry(job))
        job_id += nshards


def settle(st: ShardState) -> None:
    """Index what `push_plain_batch` deferred (see `index_plain`), in push order."""
    pending, st.unindexed = st.unindexed, []
    for q, first, datas, now in pending:
        index_plain(st, q, first, datas, now)


def pushed_event(queue: str, job_id: int, now: int, data: Any) -> dict[str, Any]:
    return {
        "event_type": "pushed",
        "queue": queue,
        "job_id": job_id,
        "timestamp": now,
        "data": data,
    }


def admit(st: ShardState, q: QueueState, job: Job, record: bytes | None = None) -> None:
    """Index a new job in its shard and queue and mark it for the next commit (with its
    `record` when the caller packed it, else packed in full at the commit)."""
    job_id = job.id
    st.jobs[job_id] = job
    q.jobs[job_id] = job
    q.listed = True
    if record is None:
        st.dirty.add(job_id)
    else:
        st.changes[f"j:{job_id}"] = record
    st.total_pushed += 1
    st.meta_dirty = True


def enqueue_new(st: ShardState, q: QueueState, job: Job, now: int, publish: bool) -> None:
    """A new job joins its queue (`st.enqueue`, inlined: this is the PUSHB hot path)."""
    q.n_waiting += 1
    if job.run_at > now:
        q.delayed.push(job, delayed_entry(job))
    else:
        q.ready.push(job, ready_entry(job))
        if q.live_waiters:
            st.wake.add(q)
    if publish and st.publishing:
        st.events.append(pushed_event(q.name, job.id, now, job.data))


def cmd_push(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    plain = _options(cmd) == _DEFAULT_OPTIONS
    return push_one(st, cmd["queue"], cmd["data"], now, None if plain else cmd)


def push_one(
    st: ShardState, queue: str, data: Any, now: int, options: Mapping[str, Any] | None
) -> Reply:
    """PUSH's reply: a job with the normalized PUSH `options`, or None when every option is
    at its default (the shard process hands such a PUSH over without normalizing it)."""
    q = checked_queue(st, queue)
    if isinstance(q, str):
        return err(q)
    if options is None:
        result = create_plain_job(st, q, data, now, publish=True)
    else:
        result = create_job(st, q, options, now, publish=True)
    if isinstance(result, str):
        return err(result)
    return {"ok": True, "id": result}


def push_plain_run(st: ShardState, queue: str, datas: list[Any], now: int) -> list[Reply]:
    """`push_one` without options for consecutive PUSHes to one queue, in order: the batch
    path (`push_plain_batch`) when every payload surely fits, else one by one, so each
    PUSH still gets its own reply or error."""
    q = checked_queue(st, queue)
    if isinstance(q, str):
        return [err(q) for _ in datas]
    if not all_job_data_fit(datas):
        return [push_one(st, queue, data, now, None) for data in datas]
    return [{"ok": True, "id": job_id} for job_id in push_fitting(st, q, datas, now, True)]


def cmd_pushb(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Never fails: skipped jobs just have no id in the reply (PROTOCOL §2.2)."""
    jobs = cmd.get("jobs") or []
    ids: list[int] = []
    if len(jobs) > st.config.max_batch_jobs:
        return {"ok": True, "ids": ids}
    q = checked_queue(st, cmd["queue"])
    if isinstance(q, str):
        return {"ok": True, "ids": ids}
    publish = st.config.pushb_events
    if all((len(fields) == 1 and "data" in fields) or not fields for fields in jobs):
        return {
            "ok": True,
            "ids": push_plain_batch(st, q, [f.get("data") for f in jobs], now, publish),
        }
    for fields in jobs:
        if (len(fields) == 1 and "data" in fields) or not fields:
            result = create_plain_job(st, q, fields.get("data"), now, publish)
        else:
            result = create_job(st, q, fields, now, publish=publish)
        if type(result) is int:
            ids.append(result)
    return {"ok": True, "ids": ids}


HANDLERS: dict[str, Handler] = {"PUSH": cmd_push, "PUSHB": cmd_pushb}
