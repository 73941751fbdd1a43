"""The job record: in-memory fields and the 31-key wire object (storage codec: `job_codec`).

A `Job` is a plain ``__slots__`` class rather than an attrs class: it is created and mutated on
the hottest path (PUSHB of 1 000 jobs), and the wire dict is built only when a reply needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final, cast

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

#: Shared by every job without tags / dependencies / children: an empty list per field per
#: job costs 56 bytes each, ~170 MB for a million waiting jobs. These fields are replaced,
#: never mutated in place, and copied to lists only when a reply is built.
_EMPTY: Final[list[Any]] = cast(list[Any], ())
UNKNOWN: Final = "unknown"


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

    @classmethod
    def from_push(
        cls, job_id: int, queue: str, now: int, fields: Mapping[str, Any], parent_id: int | None
    ) -> Job:
        """A new waiting job from PUSH fields (a normalized PUSH dict or a PUSHB element).

        Sets every slot exactly once: this is the hottest constructor (PUSHB).
        """
        get = fields.get
        job = cls.__new__(cls)
        job.id = job_id
        job.queue = queue
        job.data = get("data")
        job.priority = get("priority") or 0
        job.created_at = now
        delay = get("delay")
        job.run_at = now + delay if delay else now
        job.started_at = 0
        job.attempts = 0
        job.max_attempts = get("max_attempts") or 0
        job.backoff = get("backoff") or 0
        job.ttl = get("ttl") or 0
        job.timeout = get("timeout") or 0
        job.unique_key = get("unique_key")
        depends_on = get("depends_on")
        job.depends_on = list(depends_on) if depends_on else _EMPTY
        job.progress = 0
        job.progress_msg = None
        job.tags = get("tags") or _EMPTY
        job.lifo = bool(get("lifo"))
        job.remove_on_complete = bool(get("remove_on_complete"))
        job.remove_on_fail = bool(get("remove_on_fail"))
        job.last_heartbeat = 0
        job.stall_timeout = get("stall_timeout") or 0
        job.stall_count = 0
        job.parent_id = parent_id
        job.children_ids = _EMPTY
        job.custom_id = get("job_id")
        job.keep_completed_age = get("keep_completed_age") or 0
        job.keep_completed_count = get("keep_completed_count") or 0
        job.completed_at = 0
        job.group_id = get("group_id")
        job.state = WAITING
        job.result = None
        job.pending = None
        job.watchers = None
        job.done_children = None
        job.children_total = 0
        job.failed_at = 0
        job.heap = None
        job.entry = None
        return job

    @classmethod
    def plain(cls, job_id: int, queue: str, now: int, data: Any) -> Job:
        """A new waiting job with every option at its default (`from_push` without the
        lookups; keep the two in step)."""
        job = cls.__new__(cls)
        job.id = job_id
        job.queue = queue
        job.data = data
        job.priority = 0
        job.created_at = job.run_at = now
        job.started_at = job.attempts = job.max_attempts = job.backoff = job.ttl = 0
        job.timeout = job.progress = job.last_heartbeat = job.stall_timeout = 0
        job.stall_count = job.keep_completed_age = job.keep_completed_count = 0
        job.completed_at = job.children_total = job.failed_at = 0
        job.unique_key = job.progress_msg = job.parent_id = job.custom_id = None
        job.group_id = job.result = job.pending = job.watchers = job.done_children = None
        job.heap = job.entry = None
        job.depends_on = job.tags = job.children_ids = _EMPTY
        job.lifo = job.remove_on_complete = job.remove_on_fail = False
        job.state = WAITING
        return job

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
            "depends_on": list(self.depends_on),
            "progress": self.progress,
            "progress_msg": self.progress_msg,
            "tags": list(self.tags),
            "lifo": self.lifo,
            "remove_on_complete": self.remove_on_complete,
            "remove_on_fail": self.remove_on_fail,
            "last_heartbeat": self.last_heartbeat,
            "stall_timeout": self.stall_timeout,
            "stall_count": self.stall_count,
            "parent_id": self.parent_id,
            "children_ids": list(self.children_ids),
            "children_completed": len(done) if done else 0,
            "custom_id": self.custom_id,
            "keep_completed_age": self.keep_completed_age,
            "keep_completed_count": self.keep_completed_count,
            "completed_at": self.completed_at,
            "group_id": self.group_id,
        }

    def wire_compact(self) -> dict[str, Any]:
        """`wire` without the keys whose value is their default (a PULLB with `compact`):
        what a worker pulls is mostly defaults, and each of the 31 keys costs its encoding
        here and its decoding in the client. `id`, `queue` and `data` are always there."""
        if not any(_compact_rare(self)) and _compact_optional(self) == _NONES:
            # The usual pulled job, no option set: 0.8 µs, against 1.8 for the loops below.
            out = {
                "id": self.id, "queue": self.queue, "data": self.data,
                "created_at": self.created_at, "run_at": self.run_at,
                "started_at": self.started_at, "last_heartbeat": self.last_heartbeat,
            }  # fmt: skip
            if self.attempts:
                out["attempts"] = self.attempts
            return out
        out = {"id": self.id, "queue": self.queue, "data": self.data}
        for key, value in zip(_COMPACT_TRUTHY, _compact_truthy(self), strict=True):
            if value:
                out[key] = value
        for key, value in zip(_COMPACT_OPTIONAL, _compact_optional(self), strict=True):
            if value is not None:
                out[key] = value
        if self.depends_on:
            out["depends_on"] = list(self.depends_on)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.children_ids:
            out["children_ids"] = list(self.children_ids)
        if self.done_children:
            out["children_completed"] = len(self.done_children)
        return out

    def wire_state(self, now: int) -> str:
        """The wire state string (PROTOCOL §3.2, our spelling for the children states)."""
        state = self.state
        if state == WAITING:
            return "delayed" if self.run_at > now else "waiting"
        if state in (DEPS, PARENT):
            return WAITING_CHILDREN
        return state


# `wire_compact`: wire keys (attribute names) whose default is falsy, and those whose default
# is None (an empty string is a value there).
_COMPACT_TRUTHY: Final = (
    "priority", "created_at", "run_at", "started_at", "attempts", "max_attempts", "backoff",
    "ttl", "timeout", "progress", "lifo", "remove_on_complete", "remove_on_fail",
    "last_heartbeat", "stall_timeout", "stall_count", "parent_id", "keep_completed_age",
    "keep_completed_count", "completed_at",
)  # fmt: skip
_COMPACT_OPTIONAL: Final = ("unique_key", "progress_msg", "custom_id", "group_id")
_compact_truthy: Final = attrgetter(*_COMPACT_TRUTHY)
_compact_rare: Final = attrgetter(
    *(k for k in _COMPACT_TRUTHY if k not in ("created_at", "run_at", "started_at",
                                             "last_heartbeat", "attempts")),
    "depends_on", "tags", "children_ids", "done_children",
)  # fmt: skip
_NONES: Final = (None,) * len(_COMPACT_OPTIONAL)
_compact_optional: Final = attrgetter(*_COMPACT_OPTIONAL)
