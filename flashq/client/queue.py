"""`Queue`: a BullMQ-style handle on one queue, for code coming from BullMQ or upstream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack, final

import attrs

from flashq.client.client import FlashQ
from flashq.client.job import Job, JobState
from flashq.client.options import ClientOptions, ClientOpts, PushOptions
from flashq.errors import NotFoundError

__all__ = ["Queue"]

_DEFAULT_TYPES = ("waiting", "active", "delayed", "completed", "failed")


def _with_name(name: str, opts: PushOptions | Mapping[str, Any] | None) -> PushOptions:
    """The options with the job name as first tag (where the upstream SDK keeps it)."""
    if opts is None:
        opts = PushOptions()
    elif not isinstance(opts, PushOptions):
        opts = PushOptions(**opts)
    tags = [t for t in opts.tags or () if t != name]
    return attrs.evolve(opts, tags=[name, *tags] if name else tags)


@final
class Queue:
    """One queue, with BullMQ's method names (async).

    Args:
        name: the queue.
        options: client options, as for `FlashQ`; `**kwargs` override fields.
        client: share an existing client instead (the queue will not close it).

    Jobs come back bound to the client, so `await job.update_progress(...)`,
    `await job.finished()` ... work on them.
    """

    def __init__(
        self,
        name: str,
        options: ClientOptions | Mapping[str, Any] | None = None,
        *,
        client: FlashQ | None = None,
        **kwargs: Unpack[ClientOpts],
    ) -> None:
        self.name = name
        self._owns_client = client is None
        self.client = client if client is not None else FlashQ(options, **kwargs)

    async def connect(self) -> None:
        await self.client.connect()

    async def close(self) -> None:
        """Close the client, if this queue created it."""
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self) -> Queue:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.close()

    # -- adding ------------------------------------------------------------------------------

    async def add(
        self, name: str, data: Any, opts: PushOptions | Mapping[str, Any] | None = None
    ) -> Job:
        """Push a job named `name`; return it as stored (`job.name == name`)."""
        job_id = await self.client.push(self.name, data, _with_name(name, opts))
        job = await self.client.get_job(job_id)
        if job is None:  # completed or removed in between: describe what we pushed
            return Job(id=job_id, queue=self.name, data=data, tags=(name,), api=self.client)
        return job

    async def add_bulk(self, jobs: Sequence[Mapping[str, Any]]) -> list[Job]:
        """Push `[{"name": ..., "data": ..., "opts": {...}}, ...]` with PUSHB; return the jobs."""
        specs = [
            (job.get("data"), _with_name(job.get("name", ""), job.get("opts"))) for job in jobs
        ]
        ids = await self.client.push_batch(self.name, specs)
        return await self.client.get_jobs_batch(ids)

    # -- reading -----------------------------------------------------------------------------

    async def get_job(self, job_id: int | str) -> Job | None:
        return await self.client.get_job(int(job_id))

    async def get_jobs(
        self, types: str | Sequence[str] | None = None, start: int = 0, end: int = 100
    ) -> list[Job]:
        """Jobs in the given states (all by default), newest first, `start` to `end`."""
        if isinstance(types, str):
            types = [types]
        limit = max(0, end - start)
        found: list[Job] = []
        for state in types or _DEFAULT_TYPES:
            found.extend(await self.client.get_jobs(self.name, state, limit=start + limit))
        found.sort(key=lambda j: j.id, reverse=True)
        return found[start : start + limit]

    async def get_job_counts(self, *types: str) -> dict[str, int]:
        """Counts per state, only for `types` when given."""
        counts = (await self.client.get_job_counts(self.name)).as_dict()
        return {t: counts.get(t, 0) for t in types} if types else counts

    async def get_job_count_by_types(self, *types: str) -> int:
        return sum((await self.get_job_counts(*types)).values())

    async def get_waiting_count(self) -> int:
        return (await self.client.get_job_counts(self.name)).waiting

    async def get_active_count(self) -> int:
        return (await self.client.get_job_counts(self.name)).active

    async def get_delayed_count(self) -> int:
        return (await self.client.get_job_counts(self.name)).delayed

    async def get_completed_count(self) -> int:
        return (await self.client.get_job_counts(self.name)).completed

    async def get_failed_count(self) -> int:
        return (await self.client.get_job_counts(self.name)).failed

    async def count(self) -> int:
        """Waiting + delayed jobs."""
        return await self.client.count(self.name)

    async def get_job_state(self, job_id: int | str) -> JobState:
        return await self.client.get_state(int(job_id))

    # -- control -----------------------------------------------------------------------------

    async def pause(self) -> None:
        await self.client.pause(self.name)

    async def resume(self) -> None:
        await self.client.resume(self.name)

    async def is_paused(self) -> bool:
        return await self.client.is_paused(self.name)

    async def drain(self) -> int:
        """Remove waiting and delayed jobs; return how many."""
        return await self.client.drain(self.name)

    async def obliterate(self, force: bool = True) -> int:
        """Remove the queue and everything in it (`force` is accepted for BullMQ parity)."""
        return await self.client.obliterate(self.name)

    async def clean(self, grace: int, limit: int = 100, type: str = "completed") -> int:
        """Remove up to `limit` jobs in state `type` older than `grace` ms; return how many."""
        return await self.client.clean(self.name, grace, type, limit)

    async def retry_jobs(self) -> int:
        """Move every dead-lettered job back to waiting; return how many."""
        return await self.client.retry_dlq(self.name)

    async def remove(self, job_id: int | str) -> bool:
        """Cancel a job that is not finished; False if there was none to remove."""
        try:
            await self.client.cancel(int(job_id))
        except NotFoundError:
            return False
        return True

    async def get_dlq(self, count: int = 100) -> list[Job]:
        return await self.client.get_dlq(self.name, count)
