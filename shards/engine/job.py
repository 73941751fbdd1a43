"""The job record: in-memory fields, the 31-key wire object, and the storage codec.

A `Job` is a plain ``__slots__`` class rather than an attrs class: it is created and mutated on
the hottest path (PUSHB of 1 000 jobs), and the wire dict is built only when a reply needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgpack

if TYPE_CHECKING:
    from .pqueue import JobHeap

# Internal states. WAITING covers "waiting" and "delayed" on the wire (decided by run_at at
# the time of the question); DEPS and PARENT both answer "waiting-children" (PROTOCOL §3.2).
WAITING: Final = "waiting"
ACTIVE: Final = "active"
FAILED: Final = "failed"
DEPS: Final = "deps"
PARENT: Final = "parent"
COMPLETED: Final = "completed"

WAITING_CHILDREN: Final = "waiting-children"
UNKNOWN: Final = "unknown"

RECORD_VERSION: Final = 1

_pack = msgpack.Packer(use_bin_type=True).pack


class Job:
    """One job of this shard, in any state (completed ones while retention keeps them)."""

    __slots__ = (
        "attempts",
        "backoff",
        "children_ids",
        "children_total",
        "completed_at",
        "created_at",
        "custom_id",
        "data",
        "depends_on",
        "done_children",
        "entry",
        "failed_at",
        "group_id",
        "heap",
        "id",
        "keep_completed_age",
        "keep_completed_count",
        "last_heartbeat",
        "lifo",
        "max_attempts",
        "parent_id",
        "pending",
        "priority",
        "progress",
        "progress_msg",
        "queue",
        "remove_on_complete",
        "remove_on_fail",
        "result",
        "run_at",
        "stall_count",
        "stall_timeout",
        "started_at",
        "state",
        "tags",
        "timeout",
        "ttl",
        "unique_key",
        "watchers",
    )

    id: int
    queue: str
    data: Any
    priority: int
    created_at: int
    run_at: int
    started_at: int
    attempts: int
    max_attempts: int
    backoff: int
    ttl: int
    timeout: int
    unique_key: str | None
    depends_on: list[int]
    progress: int
    progress_msg: str | None
    tags: list[str]
    lifo: bool
    remove_on_complete: bool
    remove_on_fail: bool
    last_heartbeat: int
    stall_timeout: int
    stall_count: int
    parent_id: int | None
    children_ids: list[int]
    custom_id: str | None
    keep_completed_age: int
    keep_completed_count: int
    completed_at: int
    group_id: str | None
    # Not on the wire:
    state: str
    result: Any
    pending: set[int] | None  # DEPS: dependency ids not yet completed
    watchers: list[int] | None  # other shards to tell when this job completes
    done_children: set[int] | None  # PARENT: children that completed
    children_total: int  # PARENT: children expected (known before their ids)
    failed_at: int  # DLQ order
    heap: JobHeap | None  # the heap holding `entry`, while WAITING
    entry: tuple[Any, ...] | None

    def __init__(self, job_id: int, queue: str, data: Any, now: int) -> None:
        self.id = job_id
        self.queue = queue
        self.data = data
        self.priority = 0
        self.created_at = now
        self.run_at = now
        self.started_at = 0
        self.attempts = 0
        self.max_attempts = 0
        self.backoff = 0
        self.ttl = 0
        self.timeout = 0
        self.unique_key = None
        self.depends_on = []
        self.progress = 0
        self.progress_msg = None
        self.tags = []
        self.lifo = False
        self.remove_on_complete = False
        self.remove_on_fail = False
        self.last_heartbeat = 0
        self.stall_timeout = 0
        self.stall_count = 0
        self.parent_id = None
        self.children_ids = []
        self.custom_id = None
        self.keep_completed_age = 0
        self.keep_completed_count = 0
        self.completed_at = 0
        self.group_id = None
        self.state = WAITING
        self.result = None
        self.pending = None
        self.watchers = None
        self.done_children = None
        self.children_total = 0
        self.failed_at = 0
        self.heap = None
        self.entry = None

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.queue!r} {self.state}>"

    def wire(self) -> dict[str, Any]:
        """The Job object of PROTOCOL §3.1: exactly 31 keys, in order."""
        done = self.done_children
        return {
            "id": self.id,
            "queue": self.queue,
            "data": self.data,
            "priority": self.priority,
            "created_at": self.created_at,
            "run_at": self.run_at,
            "started_at": self.started_at,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "ttl": self.ttl,
            "timeout": self.timeout,
            "unique_key": self.unique_key,
            "depends_on": self.depends_on,
            "progress": self.progress,
            "progress_msg": self.progress_msg,
            "tags": self.tags,
            "lifo": self.lifo,
            "remove_on_complete": self.remove_on_complete,
            "remove_on_fail": self.remove_on_fail,
            "last_heartbeat": self.last_heartbeat,
            "stall_timeout": self.stall_timeout,
            "stall_count": self.stall_count,
            "parent_id": self.parent_id,
            "children_ids": self.children_ids,
            "children_completed": len(done) if done else 0,
            "custom_id": self.custom_id,
            "keep_completed_age": self.keep_completed_age,
            "keep_completed_count": self.keep_completed_count,
            "completed_at": self.completed_at,
            "group_id": self.group_id,
        }

    def wire_state(self, now: int) -> str:
        """The wire state string (PROTOCOL §3.2, our spelling for the children states)."""
        state = self.state
        if state == WAITING:
            return "delayed" if self.run_at > now else "waiting"
        if state in (DEPS, PARENT):
            return WAITING_CHILDREN
        return state

    def pack(self) -> bytes:
        """The storage record: a msgpack list, positional (see `unpack` for the order)."""
        done = self.done_children
        pending = self.pending
        packed: bytes = _pack(
            [
                RECORD_VERSION,
                self.state,
                self.queue,
                self.data,
                self.priority,
                self.created_at,
                self.run_at,
                self.started_at,
                self.attempts,
                self.max_attempts,
                self.backoff,
                self.ttl,
                self.timeout,
                self.unique_key,
                self.depends_on,
                self.progress,
                self.progress_msg,
                self.tags,
                self.lifo,
                self.remove_on_complete,
                self.remove_on_fail,
                self.stall_timeout,
                self.stall_count,
                self.parent_id,
                self.children_ids,
                sorted(done) if done else None,
                self.children_total,
                self.custom_id,
                self.keep_completed_age,
                self.keep_completed_count,
                self.completed_at,
                self.group_id,
                self.result,
                sorted(pending) if pending else None,
                self.watchers,
                self.failed_at,
                self.last_heartbeat,
            ]
        )
        return packed

    @classmethod
    def unpack(cls, job_id: int, raw: bytes) -> Job:
        """Rebuild a job from `pack` output.

        Raises:
            ValueError: not a job record of a known version.
        """
        rec = msgpack.unpackb(raw, raw=False, strict_map_key=False)
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
        job = cls(job_id, queue, data, created_at)
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
        job.depends_on = depends_on
        job.progress = progress
        job.progress_msg = progress_msg
        job.tags = tags
        job.lifo = lifo
        job.remove_on_complete = remove_on_complete
        job.remove_on_fail = remove_on_fail
        job.stall_timeout = stall_timeout
        job.stall_count = stall_count
        job.parent_id = parent_id
        job.children_ids = children_ids
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
        job.last_heartbeat = last_heartbeat
        return job
