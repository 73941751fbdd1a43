"""An indexed binary heap of jobs: O(log n) push/pop, O(1) removal by lazy deletion.

Each job remembers the one heap entry that is live for it (``job.entry``) and the heap that
holds it (``job.heap``). Removing a job just forgets that entry; stale entries are skipped when
they reach the top and swept out in bulk once they outnumber the live ones, so cancel,
change-priority and promote never scan the queue.

Entries are tuples ending with the job; the elements before it are the sort key and always
include the job id, so two different jobs never compare equal up to the job element (and the
stale and live entries of one job compare by key, then equal: never ``Job < Job``).
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .job import Job

# Sweep stale entries once they are more than half the heap, but not for tiny heaps where
# skipping them at the top is cheaper than rebuilding.
_COMPACT_MIN: Final = 64


def ready_entry(job: Job) -> tuple[Any, ...]:
    """Pull order: priority desc, run_at asc, id asc (desc for lifo jobs)."""
    return (-job.priority, job.run_at, -job.id if job.lifo else job.id, job)


def delayed_entry(job: Job) -> tuple[Any, ...]:
    """Promotion order: run_at asc, then id."""
    return (job.run_at, job.id, job)


class JobHeap:
    """A min-heap of job entries with a count of live ones."""

    __slots__ = ("items", "live")

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self.live = 0

    def __len__(self) -> int:
        return self.live

    def __iter__(self) -> Iterator[Job]:
        """Live jobs, in no particular order."""
        for entry in self.items:
            job: Job = entry[-1]
            if job.entry is entry:
                yield job

    def push(self, job: Job, entry: tuple[Any, ...]) -> None:
        job.entry = entry
        job.heap = self
        heappush(self.items, entry)
        self.live += 1

    def extend_unordered(self, job: Job, entry: tuple[Any, ...]) -> None:
        """Append without ordering; call `restore` before the next heap operation (bulk load)."""
        job.entry = entry
        job.heap = self
        self.items.append(entry)
        self.live += 1

    def restore(self) -> None:
        heapify(self.items)

    def discard(self, job: Job) -> None:
        """Forget `job`'s entry (the job must be in this heap)."""
        job.entry = None
        job.heap = None
        self.live -= 1
        items = self.items
        if len(items) > _COMPACT_MIN and len(items) > 2 * self.live:
            self.items = [e for e in items if e[-1].entry is e]
            heapify(self.items)

    def peek(self) -> Job | None:
        """The first live job, or None."""
        items = self.items
        while items:
            entry = items[0]
            job: Job = entry[-1]
            if job.entry is entry:
                return job
            heappop(items)
        return None

    def pop(self) -> Job | None:
        """Remove and return the first live job, or None."""
        items = self.items
        while items:
            entry = heappop(items)
            job: Job = entry[-1]
            if job.entry is entry:
                job.entry = None
                job.heap = None
                self.live -= 1
                return job
        return None
