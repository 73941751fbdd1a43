"""What a worker does with each job: run the handler, report the outcome, keep it alive.

Outcomes are reported with as few round trips as the protocol allows: results-less
completions are gathered into ACKB batches by one flusher task (each batch goes out as soon
as the previous one is answered, so batches grow with the load and latency stays one round
trip), completions with a result go out as ACKs pipelined on the shared connection, and one
heartbeat task beats for every long job in one pipelined write.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, final

import attrs

from flashq.client._api import Api
from flashq.client._errors import Retry
from flashq.client._session import Reply
from flashq.client._sync import portal_scope
from flashq.errors import FlashQError

if TYPE_CHECKING:
    from flashq.client._events import Events
    from flashq.client._runtime import Event, Runtime
    from flashq.client._sync import Portal
    from flashq.client.job import Job

__all__ = ["AckBatcher", "Active", "Heartbeats", "JobRunner", "WorkerBinding", "process_pool"]

logger = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_MS = 30_000
"""The server's stall window for jobs pushed without `stall_timeout` (PROTOCOL.md §3.4)."""


@final
class WorkerBinding(Api):
    """The client as the worker's jobs see it: `job.update_progress` also emits `progress`."""

    def __init__(self, client: Api, events: Events, active: dict[int, Active]) -> None:
        self._client = client
        self._events = events
        self._active = active

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        return await self._client._request(fields, wait_ms)

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        return await self._client._request_many(requests, wait_ms)

    async def progress(self, job_id: int, progress: int, message: str | None = None) -> None:
        await super().progress(job_id, progress, message)
        active = self._active.get(job_id)
        if active is not None and self._events.wants("progress"):
            await self._events.emit("progress", active.job, progress)


@final
@attrs.define
class Active:
    """A job being handled, and when it last told the server it is alive."""

    job: Job
    last_beat: float
    beat_every_s: float


@final
@attrs.define
class _Batch:
    done: Event
    error: FlashQError | None = None


@final
class AckBatcher:
    """Collects result-less completions into ACKB requests sent by one flusher task."""

    def __init__(self, runtime: Runtime, api: Api) -> None:
        self._runtime = runtime
        self._api = api
        self._ids: list[int] = []
        self._batch = _Batch(runtime.event())
        self._wakeup: Event | None = None

    async def ack(self, job_id: int) -> None:
        """Queue `job_id` and wait until the ACKB carrying it is answered."""
        self._ids.append(job_id)
        batch = self._batch
        if self._wakeup is not None:
            self._wakeup.set()
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def serve(self) -> None:
        """The flusher: runs until cancelled (after the last job has been acked)."""
        while True:
            if not self._ids:
                self._wakeup = self._runtime.event()
                await self._wakeup.wait()
                self._wakeup = None
                continue
            ids, batch = self._ids, self._batch
            self._ids, self._batch = [], _Batch(self._runtime.event())
            try:
                await self._api.ack_batch(ids)
            except FlashQError as exc:
                batch.error = exc
            batch.done.set()


@final
class Heartbeats:
    """Beats for every active job whose interval has passed, all in one pipelined write."""

    def __init__(
        self, runtime: Runtime, api: Api, active: dict[int, Active], interval_s: float | None
    ) -> None:
        self._runtime = runtime
        self._api = api
        self._active = active
        self._interval_s = interval_s

    def interval_for(self, job: Job) -> float:
        """A third of the job's stall window: two beats may be lost before it is stalled."""
        if self._interval_s is not None:
            return self._interval_s
        return (job.stall_timeout or DEFAULT_STALL_TIMEOUT_MS) / 3000

    async def serve(self) -> None:
        """Runs until cancelled."""
        rt = self._runtime
        while True:
            tick = min((a.beat_every_s for a in self._active.values()), default=1.0)
            await rt.sleep(min(tick, 1.0))
            now = rt.current_time()
            due = [a for a in self._active.values() if now - a.last_beat >= a.beat_every_s]
            if not due:
                continue
            for active in due:
                active.last_beat = now
            beats = [{"cmd": "HEARTBEAT", "id": a.job.id} for a in due]
            try:
                replies = await self._api._request_many(beats)
            except FlashQError as exc:  # connection trouble: the pull loop reports it
                logger.debug("heartbeats not sent: %s", exc)
                continue
            for active, reply in zip(due, replies, strict=True):
                if isinstance(reply, FlashQError):  # finished meanwhile, or requeued
                    logger.debug("heartbeat of job %d: %s", active.job.id, reply)


def _in_process(pool: Executor, handler: Callable[[Job], Any], job: Job) -> Any:
    return pool.submit(handler, job).result()


@final
class JobRunner:
    """Runs the handler for one job and reports the outcome to the server and to listeners."""

    def __init__(
        self,
        runtime: Runtime,
        api: Api,
        handler: Callable[[Job], Any],
        events: Events,
        acks: AckBatcher | None,
        *,
        sync_in_thread: bool,
        process_pool: Executor | None,
    ) -> None:
        self._runtime = runtime
        self._api = api
        self._handler = handler
        self._events = events
        self._acks = acks
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._sync_in_thread = sync_in_thread
        self._pool = process_pool
        self._portal: Portal | None = None
        self.completed = 0
        self.failed = 0
        self.retried = 0

    async def _invoke(self, job: Job) -> Any:
        if self._is_async:
            return await self._handler(job)
        rt = self._runtime
        if self._pool is not None:
            result = await rt.run_in_thread(_in_process, self._pool, self._handler, job.bind(None))
        elif self._sync_in_thread:
            if self._portal is None:
                self._portal = rt.portal()
            result = await rt.run_in_thread(portal_scope, self._portal, self._handler, job)
        else:
            result = self._handler(job)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def run(self, job: Job) -> None:
        """Handle `job` to the end; never raises but for cancellation."""
        events = self._events
        if events.wants("active"):
            await events.emit("active", job)
        try:
            result = await self._invoke(job)
        except Retry as retry:
            await self._report(self._retry(job, retry))
            self.retried += 1
        except Exception as exc:
            logger.debug("job %d failed", job.id, exc_info=True)
            self.failed += 1
            await self._report(self._api.fail(job.id, exc))
            if events.wants("failed"):
                await events.emit("failed", job, exc)
        else:
            if result is None and self._acks is not None and job.parent_id is None:
                # ACKB: no result to store. A flow child is acked one by one: upstream's
                # ACKB does not count it towards its parent (PROTOCOL.md §2.4).
                ok = await self._report(self._acks.ack(job.id))
            else:
                ok = await self._report(self._api.ack(job.id, result))
            if ok:
                self.completed += 1
                if events.wants("completed"):
                    await events.emit("completed", job, result)

    async def _retry(self, job: Job, retry: Retry) -> None:
        delay_ms = retry.delay_ms
        if delay_ms is None:
            await self._api.fail(job.id, retry.message)
        else:
            await self._api.move_to_delayed(job.id, delay_ms)

    async def _report(self, call: Any) -> bool:
        """Await a reporting call; a failure goes to the `error` event, not to the caller.

        A job whose outcome could not be reported stays active on the server until its
        connection's death requeues it or it stalls: at-least-once delivery.
        """
        try:
            await call
        except FlashQError as exc:
            logger.warning("could not report a job outcome: %s", exc)
            if self._events.wants("error"):
                await self._events.emit("error", exc)
            return False
        return True


def process_pool(processes: int | None) -> Executor | None:
    """The worker's process pool for `processes=N`, or None."""
    if not processes:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: forking a process that runs an event loop and threads is not safe.
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
