"""What a worker keeps about the jobs it holds: their records, heartbeats, and the API they see."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, final

import attrs

from flashq.client._api import Api
from flashq.errors import FlashQError

if TYPE_CHECKING:
    from flashq.client._events import Events
    from flashq.client._runtime import Runtime
    from flashq.client._session import Reply
    from flashq.client.job import Job

__all__ = ["Active", "Heartbeats", "WorkerBinding"]

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
    """A job the worker holds (pulled, outcome not yet answered), and when it last told the
    server it is alive."""

    job: Job
    last_beat: float
    beat_every_s: float


@final
class Heartbeats:
    """Beats for every held job whose interval has passed, all in one pipelined write."""

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
