"""`Worker`: pull jobs in batches, run a handler on each with a concurrency limit, report back.

The worker runs under Trio or asyncio (`await worker.serve()`), or blocking
(`worker.run()`). It prefetches: besides the jobs its handlers run, it holds up to
`prefetch` more, pulled ahead so that a handler that returns finds its next job without a
round trip. It survives server restarts: a failed pull is reported to `error` listeners and
retried with backoff while the client reconnects. Shutdown is graceful: stop pulling, hand
the jobs not started back to the queue, let jobs in flight finish until
`shutdown_timeout_s`, then cancel the rest and hand them back too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Final, Literal, TypeVar, Unpack, final

import attrs

from flashq.client._api import Api
from flashq.client._events import EventName, Events
from flashq.client._runtime import Event, Runtime, TaskGroup, backoff_delays, current_runtime
from flashq.client._worker_active import Active, Heartbeats, WorkerBinding
from flashq.client._worker_exec import JobRunner, Slots, process_pool
from flashq.client._worker_report import Outcome, Reporter
from flashq.client.client import FlashQ
from flashq.client.job import Job
from flashq.client.options import ClientOptions, WorkerOptions, WorkerOpts
from flashq.errors import FlashQError

__all__ = ["Worker", "WorkerOptions"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Job], Any]


_ERROR_BACKOFF_S: Final = (0.05, 2.0)

_PREFETCH_PER_SLOT: Final = 4
"""`prefetch=None`: this many jobs per unit of concurrency, as Celery's default multiplier."""

_HELD_PER_WINDOW: Final = 2
"""Jobs a worker may hold, counting those whose outcome is still on its way, per job of its
window (`concurrency` + `prefetch`): a slot is free once its handler returns, while the
outcome travels; this bounds how far reporting (the server's answers, slow `completed`
listeners) may lag behind handling before pulls wait for it. Twice the window lets a full
pull go out while the acks of the previous one are out, in the same write."""


class Worker:
    """Processes the jobs of one or more queues with `handler(job)`.

    `handler` may be `async def` (runs in the event loop) or a plain function (runs in a
    thread, or a process pool with `processes=`). Its return value is the job's result; it
    raises to fail the job (retried by the server's policy, then dead-lettered), or raises
    `Retry(delay_s=...)` to run it again later. The job it receives is bound to the
    worker's client: `job.update_progress(50)`, `job.log("...")` (await them in async
    handlers; in sync handlers they complete before returning).

    Args:
        queue: one queue name or several (each gets its own puller; they share the
            concurrency limit).
        handler: called once per job.
        client_options: how to reach the server (`ClientOptions` or a dict).
        worker_options: `WorkerOptions` or a dict; `**kwargs` override single fields.
        client: an existing async client (or any `Api`) to use instead; not closed here.
    """

    def __init__(
        self,
        queue: str | Sequence[str],
        handler: Handler,
        client_options: ClientOptions | Mapping[str, Any] | None = None,
        worker_options: WorkerOptions | Mapping[str, Any] | None = None,
        *,
        client: Api | None = None,
        **kwargs: Unpack[WorkerOpts],
    ) -> None:
        self.queues = [queue] if isinstance(queue, str) else list(queue)
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        self.handler = handler
        self.client_options = ClientOptions.coerce(client_options)
        if isinstance(worker_options, WorkerOptions):
            base = worker_options
        else:
            base = WorkerOptions.from_mapping(worker_options or {})
        self.options = attrs.evolve(base, **kwargs) if kwargs else base
        self._client = client
        self.events = Events()
        self.state: Literal["idle", "running", "stopping", "stopped"] = "idle"
        self._active: dict[int, Active] = {}
        self._reserved = 0
        self._pulls_out = 0
        self._runner: JobRunner | None = None
        self._reporter: Reporter | None = None
        self._stop_requested = False
        self._force = False
        self._stop_event: Event | None = None
        self._wake_pullers: Event | None = None
        self._idle_event: Event | None = None
        self._stopped_event: Event | None = None
        self._serving: Any = None

    # -- public surface ----------------------------------------------------------------------

    def on(self, event: EventName, fn: F | None = None) -> Any:
        """Register `fn` for `event`; without `fn`, return a decorator that does."""
        if fn is None:
            return lambda f: self.events.on(event, f)
        return self.events.on(event, fn)

    @property
    def processing(self) -> int:
        """Jobs held now (pulled, prefetched ones included; outcome not yet acknowledged)."""
        return len(self._active)

    @property
    def processed(self) -> int:
        """Jobs completed (and acknowledged) so far."""
        return self._reporter.completed if self._reporter else 0

    @property
    def failed(self) -> int:
        """Handler failures so far (each failed attempt counts)."""
        return self._runner.failed if self._runner else 0

    def request_stop(self, *, force: bool = False) -> None:
        """Ask a running worker to stop (call from its event loop thread); returns at once.

        Graceful: no more pulls, prefetched jobs not started yet are handed back to the
        queue, jobs in flight get `shutdown_timeout_s` to finish. `force=True` cancels
        them right away (they are handed back to the queue too).
        """
        self._stop_requested = True
        self._force = self._force or force
        for event in (self._stop_event, self._wake_pullers):
            if event is not None:
                event.set()
        if force and self._idle_event is not None:
            self._idle_event.set()

    async def stop(self, force: bool = False) -> None:
        """Request a stop and wait until `serve` has returned."""
        self.request_stop(force=force)
        if self._serving is not None:
            await self._serving
        elif self._stopped_event is not None and self.state != "idle":
            await self._stopped_event.wait()

    close = stop

    async def start(self) -> None:
        """asyncio only: run `serve` in a background task; returns once the worker is ready.

        Under Trio, use `await nursery.start(worker.serve)` instead.
        """
        import asyncio

        from flashq.client._runtime import detect_runtime

        if detect_runtime() != "asyncio":
            raise RuntimeError("Worker.start() is for asyncio; under Trio use nursery.start(serve)")
        ready = asyncio.get_running_loop().create_future()
        self._serving = asyncio.ensure_future(self.serve(task_status=_FutureStatus(ready)))
        await asyncio.wait([ready, self._serving], return_when=asyncio.FIRST_COMPLETED)
        if self._serving.done():
            self._serving.result()  # raise what made it end

    def run(self, runtime: Literal["trio", "asyncio"] = "trio") -> None:
        """Blocking entry point: serve until SIGINT/SIGTERM (a second signal forces)."""
        if runtime == "trio":
            import trio

            trio.run(lambda: self.serve(handle_signals=True))
        else:
            import asyncio

            asyncio.run(self.serve(handle_signals=True))

    # -- serving -----------------------------------------------------------------------------

    async def serve(self, *, handle_signals: bool = False, task_status: Any = None) -> None:
        """Run until `request_stop()` (or a signal with `handle_signals`), then drain.

        Under Trio it can be started with `nursery.start`: it reports ready once pulling.
        """
        if self.state != "idle":
            raise RuntimeError(f"this worker is {self.state}; create a new one")
        self.state = "running"
        opts = self.options
        rt = current_runtime(thread_limit=opts.processes or opts.concurrency)
        owned: FlashQ | None = None
        client = self._client
        if client is None:
            client = owned = FlashQ(self.client_options)
        api = WorkerBinding(client, self.events, self._active)
        pool = process_pool(opts.processes)
        self._reporter = reporter = Reporter(
            rt, api, self.events, ack_batch=opts.ack_batch, on_reported=self._jobs_done
        )
        slots = Slots(rt, self._wake)
        self._runner = runner = JobRunner(
            rt, self.handler, self.events, reporter, slots,
            sync_in_thread=opts.sync_in_thread, process_pool=pool,
        )  # fmt: skip
        heartbeats = Heartbeats(rt, api, self._active, opts.heartbeat_interval_s)
        self._stop_event, self._stopped_event = rt.event(), rt.event()
        if self._stop_requested:
            self._stop_event.set()
        signals: AbstractAsyncContextManager[Any] = (
            rt.watch_signals(self._on_signal) if handle_signals else nullcontext()
        )
        try:
            async with signals, rt.open_task_group() as service:
                leftover = await self._handle_jobs(
                    rt, api, heartbeats, reporter, runner, slots, service, task_status
                )
                if leftover:
                    await self._requeue(api, leftover)
                service.cancel()
        finally:
            self.state = "stopped"
            if owned is not None:
                await owned.close()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            rt.shutdown()
            self._stopped_event.set()
            await self.events.emit("stopped")

    async def _handle_jobs(
        self, rt: Runtime, api: WorkerBinding, heartbeats: Heartbeats, reporter: Reporter,
        runner: JobRunner, slots: Slots, service: TaskGroup, task_status: Any,
    ) -> list[int]:  # fmt: skip
        """Pull and handle jobs until stopped, then drain; return the ids cut off by the deadline.

        The slots run in their own task group inside the service tasks' one (pullers,
        heartbeats, reporter), so they can be cancelled while the service tasks go on.
        """
        stop = self._stop_event
        assert stop is not None
        async with rt.open_task_group() as jobs:
            slot = functools.partial(slots.serve_slot, runner.run, eager=not runner.in_threads)
            for _ in range(self.options.concurrency):
                jobs.start_soon(slot)
            for queue in self.queues:
                service.start_soon(self._pull_loop, rt, api, heartbeats, slots, reporter, queue)
            service.start_soon(heartbeats.serve)
            service.start_soon(reporter.serve)
            await self.events.emit("ready")
            if task_status is not None:
                task_status.started()
            await stop.wait()
            # Prefetched jobs no handler has started go back to their queue now, for other
            # workers to take, rather than run as the stop deadline runs out (a forced stop
            # hands them back with the jobs it cancels).
            unstarted = [job.id for job in slots.withdraw()]
            for job_id in unstarted:
                self._active.pop(job_id, None)
            self.state = "stopping"
            await self.events.emit("stopping")
            if unstarted and not self._force:
                await self._requeue(api, unstarted, started=False)
                unstarted = []
            self._idle_event = rt.event()
            if self._is_idle() or self._force:
                self._idle_event.set()
            finished = await rt.wait_event(self._idle_event, self.options.shutdown_timeout_s)
            leftover = [] if finished and not self._force else list(self._active)
            leftover += unstarted
            slots.closed = True
            jobs.cancel()  # last: under Trio this also cancels the rest of the block
        return leftover

    def _on_signal(self, signum: int) -> None:
        logger.info("signal %d: %s", signum, "stopping now" if self._stop_requested else "stopping")
        self.request_stop(force=self._stop_requested)

    async def _requeue(
        self, api: WorkerBinding, job_ids: list[int], *, started: bool = True
    ) -> None:
        """Hand jobs we will not finish back to their queue at once (attempts unchanged),
        instead of leaving them active until they stall. Handing back jobs never started
        is routine on a stop, not worth a warning."""
        if started:
            logger.warning("returning %d unfinished jobs to their queues", len(job_ids))
        else:
            logger.info("returning %d jobs not started to their queues", len(job_ids))
        requeue = [{"cmd": "MOVETODELAYED", "id": i, "delay": 0} for i in job_ids]
        try:
            await api._request_many(requeue)
        except FlashQError as exc:
            logger.warning("could not return jobs to their queues: %s", exc)

    def _is_idle(self) -> bool:
        return not self._active and self._reserved == 0

    def _window(self) -> int:
        """Most jobs held before their handler returns: `concurrency` + `prefetch`."""
        opts = self.options
        prefetch = _PREFETCH_PER_SLOT * opts.concurrency if opts.prefetch is None else opts.prefetch
        return opts.concurrency + prefetch

    def _room(self, slots: Slots, window: int) -> int:
        """How many jobs the next pull may take: room in the window, within the held-jobs
        bound (with `prefetch=0`, the free slots)."""
        free = min(window - slots.busy, _HELD_PER_WINDOW * window - len(self._active))
        return free - self._reserved

    def _share(self, free: int) -> int:
        """This puller's part of the room: shared among the pullers without a pull out,
        so that with several queues none takes it all while the others wait."""
        waiting = len(self.queues) - self._pulls_out  # this one included
        return min(self.options.batch_size, -(-free // waiting))

    def _wake(self) -> None:
        """A slot is free (its handler returned): pullers waiting for one may go on."""
        if self._wake_pullers is not None:
            self._wake_pullers.set()

    def _jobs_done(self, outcomes: list[Outcome]) -> None:
        """These jobs' outcomes were answered (or could not be sent): they leave our books."""
        active = self._active
        for job, _, _ in outcomes:
            active.pop(job.id, None)
        if self._wake_pullers is not None:
            self._wake_pullers.set()
        if self._idle_event is not None and self._is_idle():
            self._idle_event.set()

    async def _pull_loop(
        self, rt: Runtime, api: WorkerBinding, heartbeats: Heartbeats, slots: Slots,
        reporter: Reporter, queue: str,
    ) -> None:  # fmt: skip
        opts = self.options
        delays = backoff_delays(*_ERROR_BACKOFF_S)
        probe = False
        window = self._window()
        prefetch = base = window - opts.concurrency
        full = min(opts.batch_size, window)
        # `prefetch=None` adapts: handlers that empty the prefetched jobs before the next
        # pull is back (slots idle, nothing waiting) double it, up to two full batches;
        # handlers that leave a quarter of it unstarted halve it, down to the default.
        ceiling = max(base, 2 * opts.batch_size) if opts.prefetch is None else base
        held_for: int | None = None
        while not self._stop_requested:
            free = self._room(slots, window)
            if 0 < free < full and prefetch:
                # A pull smaller than it could be waits while the jobs prefetched and not
                # started yet are at least half of `prefetch`: the handlers have work for
                # a while, and the room grows meanwhile. Below that it goes out at once, so
                # the next jobs arrive before the slots run dry; the pulls stay large (at
                # least about half of `prefetch`), one round trip per many jobs.
                if 2 * slots.waiting >= prefetch:
                    free = 0
            elif 0 < free < full and reporter.sending:
                # Without prefetch no job waits for a slot, so as Nagle's algorithm holds a
                # small segment while data is unacknowledged, a pull smaller than it could
                # be waits for the acks that are out, for one batch of them at most:
                # meanwhile more handlers return and the pull grows, instead of the slots
                # settling into small batches, one round trip each.
                if held_for is None:
                    held_for = reporter.answered
                if reporter.answered == held_for:
                    free = 0
            if free <= 0:
                # One event shared by every puller, replaced once it has fired.
                if self._wake_pullers is None or self._wake_pullers.is_set():
                    self._wake_pullers = rt.event()
                await self._wake_pullers.wait()
                continue
            held_for = None
            count = 1 if probe else self._share(free)
            self._reserved += count
            self._pulls_out += 1
            try:
                batch = await api.pull_batch(queue, count, opts.pull_timeout_ms)
                if batch and self._stop_requested:
                    # Pulled as the worker stops: never started, so handed back at once,
                    # while this pull still counts as out (the stop waits for it).
                    await self._requeue(api, [job.id for job in batch], started=False)
                    batch = []
            except FlashQError as exc:
                logger.warning("pull from %r failed: %s", queue, exc)
                await self.events.emit("error", exc)
                await rt.sleep(next(delays))
                continue
            finally:
                self._reserved -= count
                self._pulls_out -= 1
            delays = backoff_delays(*_ERROR_BACKOFF_S)
            if len(batch) < count:
                self._wake()  # reserved slots left unused: other pullers may take them
            # An empty queue then asks for one job at a time, so that its blocking pull
            # holds one slot, not all that other queues could use.
            probe = not batch and len(self.queues) > 1
            if len(batch) == count and ceiling > base:
                if slots.waiting == 0 and slots.busy < opts.concurrency:
                    prefetch = min(ceiling, 2 * prefetch)
                elif 4 * slots.waiting >= prefetch:
                    prefetch = max(base, prefetch // 2)
                window = opts.concurrency + prefetch
                full = min(opts.batch_size, window)
            if batch:
                now = rt.current_time()
                active = self._active
                for job in batch:
                    active[job.id] = Active(job, now, heartbeats.interval_for(job))
                slots.submit(batch)
        if self._idle_event is not None and self._is_idle():
            self._idle_event.set()


@final
class _FutureStatus:
    """`task_status` for asyncio: resolves a future when the worker is ready."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def started(self, value: Any = None) -> None:
        if not self._future.done():
            self._future.set_result(value)
