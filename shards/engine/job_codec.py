"""Storage codec of a job: one msgpack list per job, positional, versioned.

Positional rather than a map: the record is packed on every durable change of every job
(PUSHB of 1 000 jobs packs 1 000 of them), and field names would double its size and cost.
The order below is the format: changing it means a new `RECORD_VERSION` that `unpack_job`
still reads the old way (records outlive the code that wrote them).
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from .job import _EMPTY, Job

RECORD_VERSION: Final = 1
#: The short form of a job just pushed with every option at its default (`Job.plain`):
#: ``[2, queue, data, created_at]``. Most jobs are born like that (PUSHB of `{"data": …}`),
#: and until their first change the four fields say everything; a quarter of the bytes and
#: of the packing time of the full record.
PLAIN_VERSION: Final = 2

_pack = msgpack.Packer(use_bin_type=True).pack


def plain_record_packer(queue: str, now: int) -> tuple[bytes, bytes]:
    """The constant parts of plain records of `queue` pushed at `now`: a record is
    ``head + packb(data) + tail`` (one msgpack array), so a batch packs only its payloads."""
    return b"\x94" + _pack(PLAIN_VERSION) + _pack(queue), _pack(now)


def pack_plain(queue: str, now: int, data: Any) -> bytes:
    """The short record of one job just made by `Job.plain(…, queue, now, data)`."""
    head, tail = plain_record_packer(queue, now)
    return head + _pack(data) + tail


def pack_job(job: Job) -> bytes:
    """The storage record: a msgpack list, positional (`unpack_job` reads it back)."""
    done = job.done_children
    pending = job.pending
    packed: bytes = _pack(
        [
            RECORD_VERSION,
            job.state,
            job.queue,
            job.data,
            job.priority,
            job.created_at,
            job.run_at,
            job.started_at,
            job.attempts,
            job.max_attempts,
            job.backoff,
            job.ttl,
            job.timeout,
            job.unique_key,
            job.depends_on,
            job.progress,
            job.progress_msg,
            job.tags,
            job.lifo,
            job.remove_on_complete,
            job.remove_on_fail,
            job.stall_timeout,
            job.stall_count,
            job.parent_id,
            job.children_ids,
            sorted(done) if done else None,
            job.children_total,
            job.custom_id,
            job.keep_completed_age,
            job.keep_completed_count,
            job.completed_at,
            job.group_id,
            job.result,
            sorted(pending) if pending else None,
            job.watchers,
            job.failed_at,
            job.last_heartbeat,
        ]
    )
    return packed


def unpack_job(job_id: int, raw: bytes) -> Job:
    """Rebuild a job from `pack_job` output or a plain record.

    Raises:
        ValueError: not a job record of a known version.
    """
    rec = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    if isinstance(rec, list) and len(rec) == 4 and rec[0] == PLAIN_VERSION:
        _version, queue, data, created_at = rec
        return Job.plain(job_id, queue, created_at, data)
    if not isinstance(rec, list) or not rec or rec[0] != RECORD_VERSION:
        raise ValueError(f"job record {job_id}: unknown format")
    (
        _version,
        state,
        queue,
        data,
        priority,
        created_at,
        run_at,
        started_at,
        attempts,
        max_attempts,
        backoff,
        ttl,
        timeout,
        unique_key,
        depends_on,
        progress,
        progress_msg,
        tags,
        lifo,
        remove_on_complete,
        remove_on_fail,
        stall_timeout,
        stall_count,
        parent_id,
        children_ids,
        done,
        children_total,
        custom_id,
        keep_completed_age,
        keep_completed_count,
        completed_at,
        group_id,
        result,
        pending,
        watchers,
        failed_at,
        last_heartbeat,
    ) = rec
    job = Job.__new__(Job)  # every slot set exactly once: load runs this a million times
    job.id = job_id
    job.queue = queue
    job.data = data
    job.created_at = created_at
    job.state = state
    job.priority = priority
    job.run_at = run_at
    job.started_at = started_at
    job.attempts = attempts
    job.max_attempts = max_attempts
    job.backoff = backoff
    job.ttl = ttl
    job.timeout = timeout
    job.unique_key = unique_key
    job.depends_on = depends_on or _EMPTY
    job.progress = progress
    job.progress_msg = progress_msg
    job.tags = tags or _EMPTY
    job.lifo = lifo
    job.remove_on_complete = remove_on_complete
    job.remove_on_fail = remove_on_fail
    job.stall_timeout = stall_timeout
    job.stall_count = stall_count
    job.parent_id = parent_id
    job.children_ids = children_ids or _EMPTY
    job.done_children = set(done) if done else None
    job.children_total = children_total
    job.custom_id = custom_id
    job.keep_completed_age = keep_completed_age
    job.keep_completed_count = keep_completed_count
    job.completed_at = completed_at
    job.group_id = group_id
    job.result = result
    job.pending = set(pending) if pending else None
    job.watchers = watchers
    job.failed_at = failed_at
    job.heap = None
    job.entry = None
    job.last_heartbeat = last_heartbeat
    return job
