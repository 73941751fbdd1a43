"""`Job` (the wire Job of PROTOCOL.md §3.1 as a record) and `JobState`."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar, final

import attrs

from flashq.client._sync import Done, current_portal, drive
from flashq.client.models import LogEntry

if TYPE_CHECKING:
    from flashq.client._api import Api

__all__ = ["Job", "JobState"]

T = TypeVar("T")


class JobState(enum.StrEnum):
    """Where a job is in its lifecycle (PROTOCOL.md §3.2-3.3).

    `WAITING_CHILDREN` covers both a job waiting for its `depends_on` jobs and a flow parent
    waiting for its children; the upstream spellings (`waitingchildren`, `waitingparent`,
    `waiting_children` ...) parse to it. `UNKNOWN` is an id that never existed or is gone
    (cancelled, removed, expired, forgotten); so is any spelling this SDK does not know.
    """

    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING_CHILDREN = "waiting-children"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> JobState:
        if isinstance(value, str):
            key = value.lower().replace("-", "").replace("_", "")
            if key in ("waitingchildren", "waitingparent"):
                return cls.WAITING_CHILDREN
            for member in cls:
                if member.value == key:
                    return member
        return cls.UNKNOWN


def _ids(value: Any) -> tuple[int, ...]:
    return tuple(value) if value else ()


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(value) if value else ()


@final
@attrs.frozen(slots=False)  # a dict-backed instance can take a decoded Job dict whole
class Job:
    """A job as the server describes it; timestamps and durations are milliseconds.

    Jobs returned by a client are bound to it, so the helpers below (`update_progress`,
    `log`, `finished` ...) work on them. Each helper returns an awaitable: `await` it in
    async code. In a sync worker handler, or on a job from the blocking client, the call
    completes before it returns, so it can be called without `await`.
    """

    id: int
    queue: str
    data: Any
    priority: int = 0
    created_at: int = 0
    run_at: int = 0
    started_at: int = 0
    attempts: int = 0
    max_attempts: int = 0
    backoff: int = 0
    ttl: int = 0
    timeout: int = 0
    unique_key: str | None = None
    depends_on: tuple[int, ...] = ()
    progress: int = 0
    progress_msg: str | None = None
    tags: tuple[str, ...] = ()
    lifo: bool = False
    remove_on_complete: bool = False
    remove_on_fail: bool = False
    last_heartbeat: int = 0
    stall_timeout: int = 0
    stall_count: int = 0
    parent_id: int | None = None
    children_ids: tuple[int, ...] = ()
    children_completed: int = 0
    custom_id: str | None = None
    keep_completed_age: int = 0
    keep_completed_count: int = 0
    completed_at: int = 0
    group_id: str | None = None
    state: JobState | None = None
    """Known when the reply said it (GETJOB, GETJOBS ...); None otherwise."""
    _api: Api | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def from_wire(cls, obj: Mapping[str, Any], state: Any = None, api: Api | None = None) -> Job:
        """Build a Job from a wire Job object (missing keys take their defaults)."""
        if state is None:
            state = obj.get("state")
        if state is not None and type(state) is not JobState:
            state = JobState(state)
        if len(obj) >= _WIRE_KEY_COUNT:
            fields = dict(obj)
            fields.pop("state", None)
            if fields.keys() == _WIRE_KEYS:
                return cls._adopt(fields, state, api)
        elif "id" in obj and obj.keys() <= _WIRE_KEYS:
            # A compact Job (PULLB `compact`): the keys left out hold their defaults.
            fields = _WIRE_DEFAULTS.copy()
            fields.update(obj)
            return cls._adopt(fields, state, api)
        g = obj.get
        return cls(
            id=obj["id"],
            queue=g("queue") or "",
            data=g("data"),
            priority=g("priority") or 0,
            created_at=g("created_at") or 0,
            run_at=g("run_at") or 0,
            started_at=g("started_at") or 0,
            attempts=g("attempts") or 0,
            max_attempts=g("max_attempts") or 0,
            backoff=g("backoff") or 0,
            ttl=g("ttl") or 0,
            timeout=g("timeout") or 0,
            unique_key=g("unique_key"),
            depends_on=_ids(g("depends_on")),
            progress=g("progress") or 0,
            progress_msg=g("progress_msg"),
            tags=_strs(g("tags")),
            lifo=bool(g("lifo")),
            remove_on_complete=bool(g("remove_on_complete")),
            remove_on_fail=bool(g("remove_on_fail")),
            last_heartbeat=g("last_heartbeat") or 0,
            stall_timeout=g("stall_timeout") or 0,
            stall_count=g("stall_count") or 0,
            parent_id=g("parent_id"),
            children_ids=_ids(g("children_ids")),
            children_completed=g("children_completed") or 0,
            custom_id=g("custom_id"),
            keep_completed_age=g("keep_completed_age") or 0,
            keep_completed_count=g("keep_completed_count") or 0,
            completed_at=g("completed_at") or 0,
            group_id=g("group_id"),
            state=state,
            api=api,
        )

    @classmethod
    def _adopt(cls, fields: dict[str, Any], state: JobState | None, api: Api | None) -> Job:
        """The path for a complete wire Job (what servers send; a worker builds one per job
        it pulls): `fields`, a fresh copy holding exactly the wire keys, which are the
        attribute names, becomes the instance's `__dict__` once its arrays are tuples.
        About 4x cheaper than calling `__init__` with 33 arguments."""
        deps, tags, children = fields["depends_on"], fields["tags"], fields["children_ids"]
        fields["depends_on"] = tuple(deps) if deps else ()
        fields["tags"] = tuple(tags) if tags else ()
        fields["children_ids"] = tuple(children) if children else ()
        fields["state"] = state
        fields["_api"] = api
        job = object.__new__(cls)
        object.__setattr__(job, "__dict__", fields)
        return job

    @property
    def name(self) -> str:
        """The BullMQ-style job name: `Queue.add` stores it as the first tag."""
        return self.tags[0] if self.tags else ""

    @property
    def progress_message(self) -> str | None:
        """Upstream SDK spelling of `progress_msg`."""
        return self.progress_msg

    def bind(self, api: Api | None) -> Job:
        """This job with its helpers bound to `api` (None: unbound, e.g. to pickle it)."""
        return attrs.evolve(self, api=api)

    # -- helpers -----------------------------------------------------------------------------

    def _call(self, fn: Callable[[Api], Coroutine[Any, Any, T]]) -> Awaitable[T]:
        api = self._api
        if api is None:
            raise RuntimeError("this Job is not bound to a client (see Job.bind)")
        if api.sync_driven:
            return Done(drive(fn(api)))
        portal = current_portal()
        if portal is not None:  # a sync handler in a worker thread
            return Done(portal.run(lambda: fn(api)))
        return fn(api)

    def update_progress(self, progress: int, message: str | None = None) -> Awaitable[None]:
        """Report progress (0-100) of this active job (PROGRESS)."""
        return self._call(lambda api: api.progress(self.id, progress, message))

    def log(self, message: str, level: str = "info") -> Awaitable[None]:
        """Append a log line to the job (LOG)."""
        return self._call(lambda api: api.log(self.id, message, level))

    def heartbeat(self) -> Awaitable[None]:
        """Tell the server this active job is alive (HEARTBEAT); workers do it for you."""
        return self._call(lambda api: api.heartbeat(self.id))

    def partial(self, data: Any, index: int | None = None) -> Awaitable[None]:
        """Publish a partial result of this active job (PARTIAL)."""
        return self._call(lambda api: api.partial(self.id, data, index))

    def finished(self, timeout: int = 30_000) -> Awaitable[Any]:
        """Wait up to `timeout` ms for the job to complete; return its result (WAITJOB)."""
        return self._call(lambda api: api.finished(self.id, timeout))

    def get_state(self) -> Awaitable[JobState]:
        """The job's current state (GETSTATE)."""
        return self._call(lambda api: api.get_state(self.id))

    def get_logs(self) -> Awaitable[list[LogEntry]]:
        """The job's log lines (GETLOGS)."""
        return self._call(lambda api: api.get_logs(self.id))

    def update_data(self, data: Any) -> Awaitable[None]:
        """Replace the job's data (UPDATEJOB)."""
        return self._call(lambda api: api.update(self.id, data))

    def change_priority(self, priority: int) -> Awaitable[None]:
        """Change the job's priority (CHANGEPRIORITY)."""
        return self._call(lambda api: api.change_priority(self.id, priority))

    def promote(self) -> Awaitable[None]:
        """Make a delayed job eligible now (PROMOTE)."""
        return self._call(lambda api: api.promote(self.id))

    def discard(self) -> Awaitable[None]:
        """Send the job to the dead-letter queue at once (DISCARD)."""
        return self._call(lambda api: api.discard(self.id))

    def remove(self) -> Awaitable[None]:
        """Cancel the job: it is forgotten, unless already completed or failed (CANCEL)."""
        return self._call(lambda api: api.cancel(self.id))

    def retry(self) -> Awaitable[int]:
        """Move this failed job from the DLQ back to waiting (RETRYDLQ); returns 1 or 0."""
        return self._call(lambda api: api.retry_dlq(self.queue, self.id))


_WIRE_KEYS: Final = frozenset(f.name for f in attrs.fields(Job)) - {"state", "_api"}
"""The 31 keys of a wire Job (PROTOCOL.md §3.1), spelled as Job's attributes."""
_WIRE_KEY_COUNT: Final = len(_WIRE_KEYS)
_WIRE_DEFAULTS: Final[dict[str, Any]] = {
    **{f.name: f.default for f in attrs.fields(Job) if f.name in _WIRE_KEYS},
    "queue": "",
    "data": None,
}
del _WIRE_DEFAULTS["id"]
"""What a compact wire Job means by each key it leaves out (as `from_wire`'s slow path)."""
