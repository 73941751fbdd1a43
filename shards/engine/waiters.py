"""Blocked requests (PULL, PULLB, WAITJOB) waiting for a job or a deadline.

A waiter is answered exactly once: by the engine when its condition is met, by
`WaiterBook.expired` at its deadline, or never when its connection goes away. ``done`` marks
the first of these, so the copies left in the deadline heap and the queue's FIFO are skipped.
"""

from __future__ import annotations

from collections.abc import Hashable
from heapq import heapify, heappop, heappush
from itertools import count
from typing import Final

PULL: Final = "PULL"
PULLB: Final = "PULLB"
PULLB_COMPACT: Final = "PULLB compact"
"""A PULLB that asked for compact jobs (`Job.wire_compact`)."""
WAITJOB: Final = "WAITJOB"

# Sweep finished waiters out of the deadline heap once they dominate it.
_COMPACT_MIN: Final = 1024


class Waiter:
    """One parked request."""

    __slots__ = (
        "conn",
        "count",
        "deadline",
        "done",
        "job_id",
        "kind",
        "queue",
        "serial",
        "timeout",
        "token",
    )

    def __init__(
        self,
        kind: str,
        token: Hashable,
        conn: int | None,
        deadline: int,
        serial: int,
        *,
        queue: str | None = None,
        count: int = 1,
        job_id: int = 0,
        timeout: int = 0,
    ) -> None:
        self.kind = kind
        self.token = token
        self.conn = conn
        self.deadline = deadline
        self.serial = serial
        self.queue = queue
        self.count = count
        self.job_id = job_id
        self.timeout = timeout  # as asked, for the WAITJOB timeout text
        self.done = False

    def __repr__(self) -> str:
        return f"<Waiter {self.kind} {self.token!r} deadline={self.deadline} done={self.done}>"


class WaiterBook:
    """Deadlines of every waiter, WAITJOB waiters by job, and every waiter by connection."""

    __slots__ = ("_by_conn", "_heap", "_live", "_serial", "by_job")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Waiter]] = []
        self._live = 0
        self._serial = count(1)
        self._by_conn: dict[int, dict[int, Waiter]] = {}
        self.by_job: dict[int, list[Waiter]] = {}

    def __len__(self) -> int:
        return self._live

    def new(
        self,
        kind: str,
        token: Hashable,
        conn: int | None,
        deadline: int,
        *,
        queue: str | None = None,
        count: int = 1,
        job_id: int = 0,
        timeout: int = 0,
    ) -> Waiter:
        """Create and register a waiter (the caller also files it by queue or job)."""
        w = Waiter(
            kind,
            token,
            conn,
            deadline,
            next(self._serial),
            queue=queue,
            count=count,
            job_id=job_id,
            timeout=timeout,
        )
        heappush(self._heap, (deadline, w.serial, w))
        self._live += 1
        if conn is not None:
            self._by_conn.setdefault(conn, {})[w.serial] = w
        if kind == WAITJOB:
            self.by_job.setdefault(job_id, []).append(w)
        return w

    def finish(self, w: Waiter) -> None:
        """Mark `w` answered (or abandoned); it must not be done already."""
        w.done = True
        self._live -= 1
        if w.conn is not None:
            conn_waiters = self._by_conn.get(w.conn)
            if conn_waiters is not None:
                conn_waiters.pop(w.serial, None)
                if not conn_waiters:
                    del self._by_conn[w.conn]
        heap = self._heap
        if len(heap) > _COMPACT_MIN and len(heap) > 4 * self._live:
            self._heap = [e for e in heap if not e[2].done]
            heapify(self._heap)

    def take_job_waiters(self, job_id: int) -> list[Waiter]:
        """Remove and return the live WAITJOB waiters of `job_id` (finished by this call)."""
        waiters = self.by_job.pop(job_id, None)
        if not waiters:
            return []
        live = [w for w in waiters if not w.done]
        for w in live:
            self.finish(w)
        return live

    def expired(self, now: int) -> list[Waiter]:
        """Remove and return the live waiters whose deadline is <= now (finished by this call)."""
        out: list[Waiter] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            w = heappop(heap)[2]
            if not w.done:
                self.finish(w)
                out.append(w)
                heap = self._heap  # finish() may have compacted it
        for w in out:
            if w.kind == WAITJOB:
                self._drop_job_waiter(w)
        return out

    def cancel_conn(self, conn: int) -> list[Waiter]:
        """Finish and return every live waiter of connection `conn`."""
        conn_waiters = self._by_conn.pop(conn, None)
        if not conn_waiters:
            return []
        out = list(conn_waiters.values())
        for w in out:
            w.conn = None  # already unfiled from _by_conn
            self.finish(w)
            if w.kind == WAITJOB:
                self._drop_job_waiter(w)
        return out

    def next_deadline(self) -> int | None:
        heap = self._heap
        while heap and heap[0][2].done:
            heappop(heap)
        return heap[0][0] if heap else None

    def _drop_job_waiter(self, w: Waiter) -> None:
        waiters = self.by_job.get(w.job_id)
        if waiters is not None:
            remaining = [x for x in waiters if not x.done]
            if remaining:
                self.by_job[w.job_id] = remaining
            else:
                del self.by_job[w.job_id]
