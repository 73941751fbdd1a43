"""Per-queue state: the waiting structures, the active set, the limits and the pull waiters."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import msgpack

from flashq.histogram import Histogram

from .pqueue import JobHeap

if TYPE_CHECKING:
    from .job import Job
    from .waiters import Waiter


class QueueState:
    """Everything one shard knows about one queue.

    Waiting jobs live in exactly one of three heaps: ``ready`` (run_at <= now when it was put
    there), ``delayed`` (run_at in the future; moved to ``ready`` when due, so a delayed job
    never hides a ready one) or ``parked[group]`` (met during a pull while its group had an
    active job; one of them goes back to ``ready`` whenever the group frees up).
    """

    __slots__ = (
        "active",
        "active_groups",
        "completed",
        "concurrency",
        "delayed",
        "dlq",
        "jobs",
        "last_refill",
        "latency",
        "listed",
        "live_waiters",
        "n_waiting",
        "name",
        "parked",
        "paused",
        "rate_limit",
        "ready",
        "tokens",
        "valid",
        "waiters",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = JobHeap()
        self.delayed = JobHeap()
        self.parked: dict[str, JobHeap] = {}
        self.n_waiting = 0  # jobs in ready + delayed + parked
        self.jobs: dict[int, Job] = {}  # every job of the queue except completed ones
        self.latency: Histogram | None = None  # push → completion, from the first completion
        self.active: dict[int, Job] = {}
        self.active_groups: dict[str, int] = {}  # group id -> its active job
        # OrderedDict: removing the oldest must not rescan deleted slots (see ShardState)
        self.dlq: OrderedDict[int, Job] = OrderedDict()  # insertion order = DLQ order
        self.completed: OrderedDict[int, Job] = OrderedDict()  # completion order
        self.paused = False
        self.rate_limit: int | None = None
        self.tokens = 0.0
        self.last_refill = 0
        self.concurrency: int | None = None
        self.waiters: deque[Waiter] = deque()  # blocked PULL/PULLB, FIFO
        self.live_waiters = 0
        self.listed = False  # shows in LISTQUEUES (pushed to since the last drain)
        self.valid = False  # name passed the PUSH name check

    def __repr__(self) -> str:
        return f"<QueueState {self.name!r} waiting={self.n_waiting} active={len(self.active)}>"

    # -- rate limit (token bucket: capacity = limit, refill = limit tokens per second) -------

    def set_rate_limit(self, limit: int | None, now: int) -> None:
        self.rate_limit = limit
        self.tokens = float(limit or 0)
        self.last_refill = now

    def available_tokens(self, now: int) -> int:
        """Whole tokens available at `now` (refilling first)."""
        limit = self.rate_limit
        if limit is None:
            raise ValueError("no rate limit")
        elapsed = now - self.last_refill
        if elapsed > 0:
            self.tokens = min(float(limit), self.tokens + elapsed * limit / 1000.0)
            self.last_refill = now
        return int(self.tokens)

    def next_token_at(self) -> int | None:
        """When the bucket will hold a whole token (None: no limit, limit 0, or one is there).

        Computed from the last refill, so it needs no clock.
        """
        limit = self.rate_limit
        if not limit or self.tokens >= 1.0:
            return None
        return self.last_refill + math.ceil((1.0 - self.tokens) * 1000.0 / limit)

    # -- counts -----------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(waiting, delayed) as of the last promotion of due delayed jobs."""
        delayed = len(self.delayed)
        return self.n_waiting - delayed, delayed

    def has_settings(self) -> bool:
        return self.paused or self.rate_limit is not None or self.concurrency is not None

    def settings_record(self) -> bytes | None:
        """The persisted settings, or None when all are defaults (so the record is deleted)."""
        if not self.has_settings():
            return None
        packed: bytes = msgpack.packb([self.paused, self.rate_limit, self.concurrency])
        return packed

    def load_settings(self, raw: bytes, now: int) -> None:
        rec: list[Any] = msgpack.unpackb(raw)
        self.paused = bool(rec[0])
        self.set_rate_limit(rec[1], now)
        self.concurrency = rec[2]

    def is_empty(self) -> bool:
        """Nothing worth keeping: no job, no waiter, no setting (so the state can be dropped)."""
        return (
            not self.jobs
            and not self.completed
            and not self.live_waiters
            and not self.has_settings()
            and not self.listed
        )
