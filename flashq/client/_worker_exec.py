"""Running the handler: slots that bound how many run at once, without a task per job.

`Slots` keeps `concurrency` long-lived slot tasks over one deque of jobs; `JobRunner` calls
the handler for the job a slot takes and gives the outcome to the `Reporter`
(`_worker_report`), which frees the slot at once: the ack travels while the next job runs.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, final

from flashq.client._errors import Retry
from flashq.client._sync import portal_scope
from flashq.client._worker_report import DONE, FAILED, RETRY, Outcome

if TYPE_CHECKING:
    from flashq.client._events import Events
    from flashq.client._runtime import Event, Runtime
    from flashq.client._sync import Portal
    from flashq.client._worker_report import Reporter
    from flashq.client.job import Job

__all__ = ["JobRunner", "Slots", "process_pool"]

logger = logging.getLogger(__name__)


@final
class Slots:
    """Slot tasks (`serve_slot`, one per unit of concurrency) running the jobs handed over.

    Jobs wait in one deque. Handing some over wakes idle slots, and so does a slot that
    takes a job while more wait (see `wake`): handlers that suspend get a slot each, up to
    `concurrency` at once, while handlers that return without suspending all run in the
    first slot woken, with no task and no wake-up per job.
    """

    def __init__(self, runtime: Runtime, on_free: Callable[[], None]) -> None:
        self._runtime = runtime
        self._on_free = on_free
        self._ready: deque[Job] = deque()
        self._idle: list[Event] = []
        self._waking = 0  # slots woken that have not run yet
        self._running = 0  # slots inside `run`
        self.busy = 0
        """Jobs handed over whose handler has not returned yet (waiting or running)."""
        self.closed = False
        """Set when the slots are being cancelled: threads take no more jobs."""

    def submit(self, jobs: list[Job]) -> None:
        """Queue `jobs` for the slots; the caller bounds `busy` (concurrency + prefetch):
        however many wait, no more than one job per slot runs at once."""
        self._ready.extend(jobs)
        self.busy += len(jobs)
        self.wake()

    @property
    def waiting(self) -> int:
        """Jobs handed over that no slot has taken yet (prefetched, not started)."""
        return len(self._ready)

    def withdraw(self) -> list[Job]:
        """Take back every job not started yet (the worker is stopping: they go back to
        their queue). One pop at a time: threads may be taking jobs meanwhile."""
        jobs: list[Job] = []
        while (job := self.take_nowait()) is not None:
            jobs.append(job)
        self.busy -= len(jobs)
        return jobs

    def take_nowait(self) -> Job | None:
        """The next waiting job, or None (safe from worker threads: one atomic pop)."""
        try:
            return self._ready.popleft()
        except IndexError:
            return None

    def release(self) -> None:
        """A handler returned: its slot is free (event loop thread only)."""
        self.busy -= 1
        self._on_free()

    def wake(self, caller_running: bool = False) -> None:
        """Wake idle slots for the jobs waiting (`caller_running`: from a slot inside `run`).

        While no other slot is inside a handler, one at most (a probe; the slot that
        called may run every job itself if the handlers do not suspend). Once handlers are
        seen suspending, two more than are being woken: each slot woken does the same, so
        the jobs spread over the slots in a few scheduler passes.
        """
        waiting = len(self._ready) - self._waking
        if waiting <= 0 or not self._idle:
            return
        if self._running > caller_running:
            count = min(2, waiting, len(self._idle))
        elif self._waking:
            return
        else:
            count = 1
        for _ in range(count):
            self._waking += 1
            self._idle.pop().set()

    def wants_help(self) -> bool:
        """Whether `wake` could wake a slot (a hint: threads read it without a lock)."""
        return len(self._ready) > self._waking and bool(self._idle)

    async def serve_slot(self, run: Callable[[Job], Awaitable[None]], *, eager: bool) -> None:
        """One slot: `await run(job)` for each job it takes; runs until cancelled.

        `run` must call `release()` once per job whose handler has returned. `eager`:
        wake other slots as soon as this one takes a job while more wait; else `run`
        calls `wake` itself once the job has started.
        """
        while True:
            job = self.take_nowait()
            if job is None:
                event = self._runtime.event()
                self._idle.append(event)
                try:
                    await event.wait()
                finally:
                    if event.is_set():
                        self._waking -= 1
                    else:
                        self._idle.remove(event)
                continue
            if eager:
                self.wake()
            self._running += 1
            try:
                await run(job)
            finally:
                self._running -= 1


async def _wait_for(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _in_process(pool: Executor, handler: Callable[[Job], Any], job: Job) -> Any:
    return pool.submit(handler, job).result()


@final
class JobRunner:
    """Runs the handler for the jobs slots take; each outcome goes to the reporter.

    A sync handler run in threads (the default for plain functions) keeps its thread for
    the jobs still waiting when it returns, so a run of quick jobs costs one thread
    hand-off, not one per job. Each job still starts at once: a thread that starts a job
    while others wait has an idle slot woken for them. Outcomes cross back to the event
    loop in batches, one wake-up for whatever finished meanwhile. A thread stops taking
    jobs when none wait, when the worker stops, or when someone listens to `active`
    (emitted from the event loop before each job).
    """

    def __init__(
        self,
        runtime: Runtime,
        handler: Callable[[Job], Any],
        events: Events,
        reporter: Reporter,
        slots: Slots,
        *,
        sync_in_thread: bool,
        process_pool: Executor | None,
    ) -> None:
        self._runtime = runtime
        self._handler = handler
        self._events = events
        self._reporter = reporter
        self._slots = slots
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.in_threads = not self._is_async and sync_in_thread and process_pool is None
        """Whether handlers run in threads that wake slots themselves (see `Slots`)."""
        self._pool = process_pool
        self._portal: Portal | None = None
        self._post: Callable[..., None] | None = None
        self._finished: deque[Outcome] = deque()
        self._drain_posted = False
        self.failed = 0
        self.retried = 0

    async def run(self, job: Job) -> None:
        """Handle `job` (and, in a thread, the jobs waiting after it); never raises but for
        cancellation."""
        if self._events.wants("active"):
            await self._events.emit("active", job)
        if self.in_threads:
            if self._portal is None:
                self._portal = self._runtime.portal()
                self._post = self._runtime.thread_poster()
            await self._runtime.run_in_thread(portal_scope, self._portal, self._in_thread, job)
            return
        try:
            if self._is_async:
                result = await self._handler(job)
            elif self._pool is not None:
                unbound = job.bind(None)
                result = await self._runtime.run_in_thread(
                    _in_process, self._pool, self._handler, unbound
                )
            else:
                result = self._handler(job)
            if not self._is_async and inspect.isawaitable(result):
                result = await result
        except Retry as retry:
            self._finish(job, RETRY, retry)
        except Exception as exc:
            self._finish(job, FAILED, exc)
        else:
            self._finish(job, DONE, result)

    def _in_thread(self, job: Job | None) -> None:
        """In a worker thread: handle `job`, then the jobs still waiting, until none waits."""
        post, portal, slots, finished = self._post, self._portal, self._slots, self._finished
        assert post is not None
        assert portal is not None
        while job is not None:
            if slots.wants_help():
                post(slots.wake, True)
            try:
                result = self._handler(job)
                if inspect.isawaitable(result):
                    result = portal.run(functools.partial(_wait_for, result))
            except Retry as retry:
                finished.append((job, RETRY, retry))
            except Exception as exc:
                finished.append((job, FAILED, exc))
            else:
                finished.append((job, DONE, result))
            if not self._drain_posted:
                self._drain_posted = True
                post(self._drain)
            if slots.closed or self._events.wants("active"):
                return
            job = slots.take_nowait()

    def _drain(self) -> None:
        """In the event loop: finish what the threads have handled so far."""
        self._drain_posted = False  # first: a job appended from now on posts a new drain
        finished = self._finished
        while finished:
            self._finish(*finished.popleft())

    def _finish(self, job: Job, kind: int, value: Any) -> None:
        """The handler returned (event loop thread): free the slot, queue the outcome."""
        self._slots.release()
        if kind == RETRY:
            self.retried += 1
        elif kind == FAILED:
            logger.debug("job %d failed", job.id, exc_info=value)
            self.failed += 1
        self._reporter.add(job, kind, value)


def process_pool(processes: int | None) -> Executor | None:
    """The worker's process pool for `processes=N`, or None."""
    if not processes:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: forking a process that runs an event loop and threads is not safe.
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
