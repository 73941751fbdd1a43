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

from flashq.errors import FlashQError, ValidationError

if TYPE_CHECKING:
    from flashq.client._api import Api
    from flashq.client._events import Events
    from flashq.client._runtime import Event, Runtime
    from flashq.client._session import Reply
    from flashq.client.job import Job

__all__ = ["DONE", "FAILED", "RETRY", "Outcome", "Reporter"]

logger = logging.getLogger(__name__)

MAX_ACKB_IDS: Final = 1000
"""Ids per ACKB, the SDKs' cap (PROTOCOL.md §4.1)."""

DONE, FAILED, RETRY = 0, 1, 2
"""Outcome kinds: the handler returned, raised, or raised `Retry`."""
Outcome = tuple["Job", int, Any]
"""(job, kind, value): the result for DONE, the exception for FAILED, the Retry for RETRY."""


@final
class Reporter:
    """Queues job outcomes and sends them from one flusher task (`serve`).

    Args:
        api: where the outcomes go (`_request_many`, so any `Api` works).
        events: `completed` is emitted once the ack is answered, `failed` once the FAIL
            is; a report that fails goes to `error`.
        ack_batch: result-less completions go in ACKB batches (else one ACK each).
        on_reported: called with the outcomes `(job, kind, value)` of each request once
            it is answered (or failed), after their events.
    """

    def __init__(
        self,
        runtime: Runtime,
        api: Api,
        events: Events,
        *,
        ack_batch: bool,
        on_reported: Callable[[list[Outcome]], None],
    ) -> None:
        self._runtime = runtime
        self._api = api
        self._events = events
        self._ack_batch = ack_batch
        self._on_reported = on_reported
        self._queued: list[Outcome] = []
        self._wakeup: Event | None = None
        self.completed = 0
        self.sending = False
        """Whether a batch of outcomes is out, waiting for its answers."""
        self.answered = 0
        """Batches answered so far (or failed)."""

    def add(self, job: Job, kind: int, value: Any) -> None:
        """Queue the outcome of `job` (never blocks): DONE with the handler's result,
        FAILED with its exception, RETRY with the `Retry` it raised."""
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
            self.sending = True
            try:
                await self._send(batch)
            finally:
                self.sending = False

    async def _send(self, batch: list[Outcome]) -> None:
        requests, owners = self._requests(batch)
        try:
            replies: list[Reply] = await self._api._request_many(requests)
        except ValidationError:
            # Refused before sending (a result too large for a frame): send one by one,
            # so that only the outcome at fault is lost.
            replies = [await self._send_one(fields) for fields in requests]
        except FlashQError as exc:
            replies = [exc] * len(requests)
        self.answered += 1  # before `on_reported` wakes anyone up
        events = self._events
        listened = events.wants("completed") or events.wants("failed") or events.wants("error")
        for outcomes, reply in zip(owners, replies, strict=True):
            if isinstance(reply, FlashQError):
                logger.warning("could not report %d job outcome(s): %s", len(outcomes), reply)
            elif outcomes[0][1] == DONE:  # a request's outcomes are all of one kind
                self.completed += len(outcomes)
            if listened:
                await self._emit(outcomes, reply)
            self._on_reported(outcomes)

    async def _send_one(self, fields: dict[str, Any]) -> Reply:
        try:
            return (await self._api._request_many([fields]))[0]
        except FlashQError as exc:
            return exc

    async def _emit(self, outcomes: list[Outcome], reply: Reply) -> None:
        events = self._events
        for job, kind, value in outcomes:
            if isinstance(reply, FlashQError):
                if events.wants("error"):
                    await events.emit("error", reply)
            elif kind == DONE and events.wants("completed"):
                await events.emit("completed", job, value)
            if kind == FAILED and events.wants("failed"):
                await events.emit("failed", job, value)

    def _requests(self, batch: list[Outcome]) -> tuple[list[dict[str, Any]], list[list[Outcome]]]:
        """The commands for `batch` (ACKBs first), and for each the outcomes it carries."""
        singles: list[dict[str, Any]] = []
        single_owners: list[list[Outcome]] = []
        batched: list[Outcome] = []
        for item in batch:
            job, kind, value = item
            if kind == DONE:
                # ACKB stores no result, and upstream's ACKB does not count a flow child
                # towards its parent (PROTOCOL.md §2.4): those are acked one by one.
                if value is None and self._ack_batch and job.parent_id is None:
                    batched.append(item)
                    continue
                fields: dict[str, Any] = {"cmd": "ACK", "id": job.id}
                if value is not None:
                    fields["result"] = value
            elif kind == FAILED:
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
