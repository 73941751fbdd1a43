"""Client methods for jobs: push, pull, ack, queries and job management (PROTOCOL.md §2.1-2.6).

Names and positional parameters follow the upstream flashQ Python SDK, so switching is a
change of import. Every duration is in milliseconds, as on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Unpack

from flashq.client._api_base import ApiBase, count_of, raise_first_error
from flashq.client.job import Job, JobState
from flashq.client.models import FlowResult, JobCounts, LogEntry, Progress
from flashq.client.options import FlowChild, PushOptions, PushOpts, job_fields

__all__ = ["JobsApi"]

DEFAULT_PULL_TIMEOUT_MS: Final = 30_000
MAX_BATCH_JOBS: Final = 1000
"""Jobs per PUSHB / ids per ACKB: the server's PUSHB limit and the SDKs' cap (PROTOCOL §4.1)."""

JobSpec = Any | tuple[Any, PushOptions | Mapping[str, Any] | None]
"""An item of `push_batch`: the data alone, or `(data, options)`."""


def _chunks(items: list[Any], size: int = MAX_BATCH_JOBS) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def push_fields(
    queue: str, data: Any, options: PushOptions | Mapping[str, Any] | None, opts: Mapping[str, Any]
) -> dict[str, Any]:
    """The PUSH command (shared with `Pipeline.push`'s fast path)."""
    fields = job_fields(data, options, opts)
    fields["cmd"] = "PUSH"
    fields["queue"] = queue
    return fields


def pushed_id(reply: Mapping[str, Any]) -> int:
    return int(reply["id"])


class JobsApi(ApiBase):
    """Core, query and job-management commands.

    `timeout` parameters (ms) are how long the server may hold a PULL or WAITJOB, part of
    the command itself, as upstream names them (hence the ASYNC109 exemptions).
    """

    # -- core --------------------------------------------------------------------------------

    async def push(
        self,
        queue: str,
        data: Any,
        options: PushOptions | Mapping[str, Any] | None = None,
        **opts: Unpack[PushOpts],
    ) -> int:
        """Push one job; return its id (an existing id when `job_id` is already known).

        Options come as a `PushOptions`, a dict, or keywords (`priority=5, delay=1000`).
        """
        return pushed_id(await self._request(push_fields(queue, data, options, opts)))

    async def push_batch(self, queue: str, jobs: Iterable[JobSpec]) -> list[int]:
        """Push many jobs with PUSHB, 1000 per request, all requests pipelined.

        Each item is the job data, or a `(data, options)` tuple. Returns the new ids in
        order; jobs the server skipped (debounced, duplicate unique key) have no id, so
        the list may be shorter than `jobs` (PROTOCOL.md §2.2).
        """
        items = [
            job_fields(job[0], job[1], {}) if isinstance(job, tuple) else {"data": job}
            for job in jobs
        ]
        if not items:
            return []
        replies = await self._request_many(
            [{"cmd": "PUSHB", "queue": queue, "jobs": chunk} for chunk in _chunks(items)]
        )
        ids: list[int] = []
        for reply in raise_first_error(replies):
            ids.extend(reply["ids"])
        return ids

    async def push_flow(
        self,
        queue: str,
        data: Any,
        children: Sequence[FlowChild | Mapping[str, Any]],
        *,
        priority: int = 0,
    ) -> FlowResult:
        """Push a parent job that becomes waiting once all its children are acked (FLOW)."""
        wire = [c.to_wire() if isinstance(c, FlowChild) else dict(c) for c in children]
        reply = await self._request(
            {"cmd": "FLOW", "queue": queue, "data": data, "children": wire, "priority": priority}
        )
        return FlowResult(int(reply["parent_id"]), tuple(reply.get("children_ids") or ()))

    async def pull(self, queue: str, timeout: int | None = None) -> Job | None:  # noqa: ASYNC109
        """Take the next job (it becomes active), waiting up to `timeout` ms; None if none."""
        wait = DEFAULT_PULL_TIMEOUT_MS if timeout is None else timeout
        reply = await self._request({"cmd": "PULL", "queue": queue, "timeout": wait}, wait)
        obj = reply.get("job")
        return None if obj is None else self._job(obj, JobState.ACTIVE)

    async def pull_batch(
        self,
        queue: str,
        count: int,
        timeout: int | None = None,  # noqa: ASYNC109
    ) -> list[Job]:
        """Take up to `count` jobs, returning as soon as one is available (or [] on timeout)."""
        wait = DEFAULT_PULL_TIMEOUT_MS if timeout is None else timeout
        # `compact`: the server leaves out keys at their default, which `Job.from_wire` fills
        # in (a server that does not know the flag sends them all: same Jobs).
        reply = await self._request(
            {"cmd": "PULLB", "queue": queue, "count": count, "timeout": wait, "compact": True},
            wait,
        )
        api = self._job_api()
        return [Job.from_wire(o, JobState.ACTIVE, api) for o in reply.get("jobs") or ()]

    async def ack(self, job_id: int, result: Any = None) -> None:
        """Complete an active job, storing `result` for `get_result` / `finished`."""
        fields: dict[str, Any] = {"cmd": "ACK", "id": job_id}
        if result is not None:
            fields["result"] = result
        await self._request(fields)

    async def ack_batch(self, job_ids: Sequence[int]) -> int:
        """Complete many active jobs without results (ACKB, 1000 per request, pipelined).

        Returns how many were acknowledged; ids that are not active are skipped.
        """
        ids = list(job_ids)
        if not ids:
            return 0
        replies = await self._request_many(
            [{"cmd": "ACKB", "ids": chunk} for chunk in _chunks(ids)]
        )
        return sum(count_of(r) for r in raise_first_error(replies))

    async def fail(self, job_id: int, error: str | BaseException | None = None) -> None:
        """Fail an active job: retried with backoff, or dead-lettered after `max_attempts`."""
        text = None if error is None else str(error) or type(error).__name__
        await self._request({"cmd": "FAIL", "id": job_id, "error": text})

    # -- queries -----------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        """The job with its state, or None when its data is gone (completed, unknown)."""
        reply = await self._request({"cmd": "GETJOB", "id": job_id})
        obj = reply.get("job")
        return None if obj is None else self._job(obj, reply.get("state"))

    async def get_state(self, job_id: int) -> JobState:
        """The job's state; `JobState.UNKNOWN` for ids that never existed or are gone."""
        reply = await self._request({"cmd": "GETSTATE", "id": job_id})
        return JobState(reply.get("state") or "unknown")

    async def get_result(self, job_id: int) -> Any:
        """The result a completed job was acked with (None if none or forgotten)."""
        reply = await self._request({"cmd": "GETRESULT", "id": job_id})
        return reply.get("result")

    async def get_job_by_custom_id(self, custom_id: str) -> Job | None:
        """The live job pushed with `job_id=custom_id`, or None."""
        reply = await self._request({"cmd": "GETJOBBYCUSTOMID", "job_id": custom_id})
        obj = reply.get("job")
        return None if obj is None else self._job(obj, reply.get("state"))

    async def get_jobs(
        self,
        queue: str | None = None,
        state: JobState | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs of `queue` (all queues if None) in `state` (any if None), newest first."""
        fields: dict[str, Any] = {"cmd": "GETJOBS", "limit": limit, "offset": offset}
        if queue is not None:
            fields["queue"] = queue
        if state is not None:
            fields["state"] = state.value if isinstance(state, JobState) else state
        reply = await self._request(fields)
        return self._jobs(reply.get("jobs"))

    async def get_jobs_batch(self, job_ids: Sequence[int]) -> list[Job]:
        """The jobs with these ids that still have data, in request order (GETJOBSBATCH)."""
        reply = await self._request({"cmd": "GETJOBSBATCH", "ids": list(job_ids)})
        return self._jobs(reply.get("jobs"))

    async def get_job_counts(self, queue: str) -> JobCounts:
        """Jobs of `queue` per state."""
        return JobCounts.from_wire(await self._request({"cmd": "GETJOBCOUNTS", "queue": queue}))

    async def count(self, queue: str) -> int:
        """Waiting + delayed jobs of `queue`."""
        reply = await self._request({"cmd": "COUNT", "queue": queue})
        return int(reply["count"])

    async def finished(self, job_id: int, timeout: int = 30_000) -> Any:  # noqa: ASYNC109
        """Wait up to `timeout` ms for the job to complete and return its result (WAITJOB).

        Raises:
            ServerError: the job failed ("Job failed"); NotFoundError: unknown job;
            TimeoutError_: not completed in time.
        """
        reply = await self._request({"cmd": "WAITJOB", "id": job_id, "timeout": timeout}, timeout)
        return reply.get("result")

    # -- job management ----------------------------------------------------------------------

    async def cancel(self, job_id: int) -> None:
        """Forget a job that is not completed or failed yet."""
        await self._request({"cmd": "CANCEL", "id": job_id})

    async def progress(self, job_id: int, progress: int, message: str | None = None) -> None:
        """Set an active job's progress, clamped to 0-100, with an optional message."""
        value = min(100, max(0, int(progress)))
        await self._request(
            {"cmd": "PROGRESS", "id": job_id, "progress": value, "message": message}
        )

    async def get_progress(self, job_id: int) -> Progress:
        """An active job's `(progress, message)`."""
        return Progress.from_wire(await self._request({"cmd": "GETPROGRESS", "id": job_id}))

    async def update(self, job_id: int, data: Any) -> None:
        """Replace a job's data (UPDATEJOB)."""
        await self._request({"cmd": "UPDATEJOB", "id": job_id, "data": data})

    async def change_priority(self, job_id: int, priority: int) -> None:
        await self._request({"cmd": "CHANGEPRIORITY", "id": job_id, "priority": priority})

    async def move_to_delayed(self, job_id: int, delay: int) -> None:
        """Put an active job back, eligible in `delay` ms; `attempts` is unchanged."""
        await self._request({"cmd": "MOVETODELAYED", "id": job_id, "delay": delay})

    async def promote(self, job_id: int) -> None:
        """Make a delayed job eligible now."""
        await self._request({"cmd": "PROMOTE", "id": job_id})

    async def discard(self, job_id: int) -> None:
        """Move a waiting, delayed or active job to the DLQ at once."""
        await self._request({"cmd": "DISCARD", "id": job_id})

    async def heartbeat(self, job_id: int) -> None:
        """Keep an active job from being detected as stalled."""
        await self._request({"cmd": "HEARTBEAT", "id": job_id})

    async def partial(self, job_id: int, data: Any, index: int | None = None) -> None:
        """Publish a partial result of an active job (a `partial` event)."""
        fields: dict[str, Any] = {"cmd": "PARTIAL", "id": job_id, "data": data}
        if index is not None:
            fields["index"] = index
        await self._request(fields)

    async def log(self, job_id: int, message: str, level: str = "info") -> None:
        """Append a line to a job's log (the last 100 are kept)."""
        await self._request({"cmd": "LOG", "id": job_id, "message": message, "level": level})

    async def get_logs(self, job_id: int) -> list[LogEntry]:
        reply = await self._request({"cmd": "GETLOGS", "id": job_id})
        return [LogEntry.from_wire(e) for e in reply.get("logs") or ()]
