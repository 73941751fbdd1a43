"""Telling the server how each job ended, in as few round trips as the protocol allows.

A job's slot is free as soon as its handler returns; its outcome is queued here and one
flusher task sends everything queued so far in one pipelined write: the result-less
completions as ACKB batches, then one ACK (with result), FAIL or MOVETODELAYED per other
job. The next batch goes out as soon as the previous one is answered, so batches grow with
the load while a lone job still costs one round trip; and since the worker's next PULLB is
issued in the same scheduler pass, the acks of one batch and the pull of the next share a
write. A job leaves the worker's books only once its outcome is answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

from flashq.client._errors import Retry
from flashq.errors import FlashQError

if TYPE_CHECKING:
    from flashq.client._api import Api
    from flashq.client._events import Events
    from flashq.client._runtime import Event, Runtime
    from flashq.client._session import Reply
    from flashq.client.job import Job

__all__ = ["Reporter"]

logger = logging.getLogger(__name__)

MAX_ACKB_IDS: Final = 1000
"""Ids per ACKB, the SDKs' cap (PROTOCOL.md §4.1)."""

_DONE, _FAILED, _RETRY = 0, 1, 2
_Outcome = tuple["Job", int, Any]
"""(job, kind, value): the result for _DONE, the exception for _FAILED, the Retry for _RETRY."""


@final
class Reporter:
    """Queues job outcomes and sends them from one flusher task (`serve`).

    Args:
        api: where the outcomes go (`_request_many`, so any `Api` works).
        events: `completed` is emitted once the ack is answered, `failed` once the FAIL
            is; a report that fails goes to `error`.
        ack_batch: result-less completions go in ACKB batches (else one ACK each).
        on_reported: called with each job once its outcome is answered (or failed).
    """

    def __init__(
        self,
        runtime: Runtime,
        api: Api,
        events: Events,
        *,
        ack_batch: bool,
        on_reported: Callable[[Job], None],
    ) -> None:
        self._runtime = runtime
        self._api = api
        self._events = events
        self._ack_batch = ack_batch
        self._on_reported = on_reported
        self._queued: list[_Outcome] = []
        self._wakeup: Event | None = None
        self.completed = 0

    @property
    def queued(self) -> int:
        """Outcomes not sent yet."""
        return len(self._queued)

    def done(self, job: Job, result: Any) -> None:
        """The handler returned `result`: ack the job (never blocks)."""
        self._queue(job, _DONE, result)

    def failed(self, job: Job, exc: BaseException) -> None:
        """The handler raised `exc`: FAIL the job (the server retries or dead-letters it)."""
        self._queue(job, _FAILED, exc)

    def retry(self, job: Job, retry: Retry) -> None:
        """The handler raised `Retry`: run the job again after its delay, or by backoff."""
        self._queue(job, _RETRY, retry)

    def _queue(self, job: Job, kind: int, value: Any) -> None:
        self._queued.append((job, kind, value))
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    async def serve(self) -> None:
        """The flusher: runs until cancelled (after the last outcome has been answered)."""
        while True:
            if not self._queued:
                self._wakeup = wakeup = self._runtime.event()
                await wakeup.wait()
                continue
            batch, self._queued = self._queued, []
            await self._send(batch)

    async def _send(self, batch: list[_Outcome]) -> None:
        requests, owners = self._requests(batch)
        try:
            replies: list[Reply] = await self._api._request_many(requests)
        except FlashQError as exc:
            replies = [exc] * len(requests)
        events = self._events
        for jobs, reply in zip(owners, replies, strict=True):
            for job, kind, value in jobs:
                if isinstance(reply, FlashQError):
                    logger.warning("could not report a job outcome: %s", reply)
                    if events.wants("error"):
                        await events.emit("error", reply)
                elif kind == _DONE:
                    self.completed += 1
                    if events.wants("completed"):
                        await events.emit("completed", job, value)
                if kind == _FAILED and events.wants("failed"):
                    await events.emit("failed", job, value)
                self._on_reported(job)

    def _requests(self, batch: list[_Outcome]) -> tuple[list[dict[str, Any]], list[list[_Outcome]]]:
        """The commands for `batch` (ACKBs first), and for each the outcomes it carries."""
        singles: list[dict[str, Any]] = []
        single_owners: list[list[_Outcome]] = []
        batched: list[_Outcome] = []
        for item in batch:
            job, kind, value = item
            if kind == _DONE:
                # ACKB stores no result, and upstream's ACKB does not count a flow child
                # towards its parent (PROTOCOL.md §2.4): those are acked one by one.
                if value is None and self._ack_batch and job.parent_id is None:
                    batched.append(item)
                    continue
                fields: dict[str, Any] = {"cmd": "ACK", "id": job.id}
                if value is not None:
                    fields["result"] = value
            elif kind == _FAILED:
                fields = {"cmd": "FAIL", "id": job.id, "error": str(value) or type(value).__name__}
            elif value.delay_ms is None:
                fields = {"cmd": "FAIL", "id": job.id, "error": value.message}
            else:
                fields = {"cmd": "MOVETODELAYED", "id": job.id, "delay": value.delay_ms}
            singles.append(fields)
            single_owners.append([item])
        chunks = [batched[i : i + MAX_ACKB_IDS] for i in range(0, len(batched), MAX_ACKB_IDS)]
        requests = [{"cmd": "ACKB", "ids": [job.id for job, _, _ in c]} for c in chunks]
        return requests + singles, chunks + single_owners
