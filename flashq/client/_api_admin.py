"""Client methods for queues, DLQ, cron, monitoring, key/value (PROTOCOL.md §2.7-2.13)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flashq.client._api_base import ApiBase, count_of
from flashq.client.job import Job, JobState
from flashq.client.models import CronJob, Metrics, QueueInfo, Stats

__all__ = ["AdminApi"]


class AdminApi(ApiBase):
    """Queue control, dead-letter queue, cron, monitoring and key/value commands."""

    # -- queue control -----------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        """Stop handing out jobs of `queue` (pushes are still accepted)."""
        await self._request({"cmd": "PAUSE", "queue": queue})

    async def resume(self, queue: str) -> None:
        await self._request({"cmd": "RESUME", "queue": queue})

    async def is_paused(self, queue: str) -> bool:
        reply = await self._request({"cmd": "ISPAUSED", "queue": queue})
        return bool(reply.get("paused"))

    async def drain(self, queue: str) -> int:
        """Remove the waiting and delayed jobs of `queue`; return how many."""
        return int((await self._request({"cmd": "DRAIN", "queue": queue}))["count"])

    async def obliterate(self, queue: str) -> int:
        """Remove everything of `queue`: jobs in every state, settings, crons; return the count."""
        return int((await self._request({"cmd": "OBLITERATE", "queue": queue}))["count"])

    async def clean(
        self, queue: str, grace: int, state: JobState | str, limit: int | None = None
    ) -> int:
        """Remove jobs in `state` (waiting, delayed, completed, failed) older than `grace` ms."""
        fields: dict[str, Any] = {
            "cmd": "CLEAN",
            "queue": queue,
            "grace": grace,
            "state": state.value if isinstance(state, JobState) else state,
        }
        if limit is not None:
            fields["limit"] = limit
        return int((await self._request(fields))["count"])

    async def list_queues(self) -> list[QueueInfo]:
        reply = await self._request({"cmd": "LISTQUEUES"})
        return [QueueInfo.from_wire(q) for q in reply.get("queues") or ()]

    async def set_rate_limit(self, queue: str, limit: int) -> None:
        """At most `limit` PULLs per second on `queue` (token bucket)."""
        await self._request({"cmd": "RATELIMIT", "queue": queue, "limit": limit})

    async def clear_rate_limit(self, queue: str) -> None:
        await self._request({"cmd": "RATELIMITCLEAR", "queue": queue})

    async def set_concurrency(self, queue: str, limit: int) -> None:
        """At most `limit` jobs of `queue` active at once, across all workers."""
        await self._request({"cmd": "SETCONCURRENCY", "queue": queue, "limit": limit})

    async def clear_concurrency(self, queue: str) -> None:
        await self._request({"cmd": "CLEARCONCURRENCY", "queue": queue})

    # -- dead-letter queue -------------------------------------------------------------------

    async def get_dlq(self, queue: str, count: int = 100) -> list[Job]:
        """Up to `count` dead-lettered jobs of `queue`, oldest first."""
        reply = await self._request({"cmd": "DLQ", "queue": queue, "count": count})
        api = self._job_api()
        return [Job.from_wire(o, JobState.FAILED, api) for o in reply.get("jobs") or ()]

    async def retry_dlq(self, queue: str, job_id: int | None = None) -> int:
        """Move one (or every) dead-lettered job back to waiting; return how many moved."""
        fields: dict[str, Any] = {"cmd": "RETRYDLQ", "queue": queue}
        if job_id is not None:
            fields["id"] = job_id
        return count_of(await self._request(fields))

    async def purge_dlq(self, queue: str) -> int:
        """Delete every dead-lettered job of `queue`; return how many."""
        return int((await self._request({"cmd": "PURGEDLQ", "queue": queue}))["count"])

    # -- cron --------------------------------------------------------------------------------

    async def add_cron(
        self,
        name: str,
        queue: str,
        schedule: str | None = None,
        data: Any = None,
        *,
        repeat_every: int | None = None,
        priority: int = 0,
        limit: int | None = None,
    ) -> None:
        """Create or replace the cron `name`, pushing `data` to `queue` on each run.

        `schedule` is a 6-field cron pattern (seconds first), a 5-field one, or `*/N` for
        every N seconds; `repeat_every` (ms) runs at a fixed interval instead. `limit`
        caps the number of runs.
        """
        fields: dict[str, Any] = {
            "cmd": "CRON",
            "name": name,
            "queue": queue,
            "data": data,
            "priority": priority,
        }
        if schedule is not None:
            fields["schedule"] = schedule
        if repeat_every is not None:
            fields["repeat_every"] = repeat_every
        if limit is not None:
            fields["limit"] = limit
        await self._request(fields)

    async def delete_cron(self, name: str) -> None:
        await self._request({"cmd": "CRONDELETE", "name": name})

    async def list_crons(self) -> list[CronJob]:
        reply = await self._request({"cmd": "CRONLIST"})
        return [CronJob.from_wire(c) for c in reply.get("crons") or ()]

    # -- monitoring --------------------------------------------------------------------------

    async def stats(self) -> Stats:
        return Stats.from_wire(await self._request({"cmd": "STATS"}))

    async def metrics(self) -> Metrics:
        reply = await self._request({"cmd": "METRICS"})
        return Metrics.from_wire(reply.get("metrics") or {})

    async def ping(self) -> None:
        """One round trip; raises if the server does not answer."""
        await self._request({"cmd": "PING"})

    # -- key/value store (in memory on the server, not persisted) ----------------------------

    async def kv_set(self, key: str, value: Any, ttl: int | None = None) -> None:
        fields: dict[str, Any] = {"cmd": "KVSET", "key": key, "value": value}
        if ttl is not None:
            fields["ttl"] = ttl
        await self._request(fields)

    async def kv_get(self, key: str) -> Any:
        return (await self._request({"cmd": "KVGET", "key": key})).get("value")

    async def kv_del(self, key: str) -> bool:
        return bool((await self._request({"cmd": "KVDEL", "key": key})).get("exists"))

    async def kv_mget(self, keys: Sequence[str]) -> list[Any]:
        return list((await self._request({"cmd": "KVMGET", "keys": list(keys)}))["values"])

    async def kv_mset(self, entries: Sequence[Mapping[str, Any]]) -> int:
        """Set many `{"key", "value", "ttl"?}` entries; return how many were stored."""
        reply = await self._request({"cmd": "KVMSET", "entries": [dict(e) for e in entries]})
        return int(reply["count"])

    async def kv_exists(self, key: str) -> bool:
        return bool((await self._request({"cmd": "KVEXISTS", "key": key})).get("exists"))

    async def kv_expire(self, key: str, ttl: int) -> bool:
        reply = await self._request({"cmd": "KVEXPIRE", "key": key, "ttl": ttl})
        return bool(reply.get("exists"))

    async def kv_ttl(self, key: str) -> int:
        """Remaining ms; -1 without TTL, -2 when the key is missing."""
        return int((await self._request({"cmd": "KVTTL", "key": key}))["ttl"])

    async def kv_keys(self, pattern: str | None = None) -> list[str]:
        fields: dict[str, Any] = {"cmd": "KVKEYS"}
        if pattern is not None:
            fields["pattern"] = pattern
        return list((await self._request(fields))["keys"])

    async def kv_incr(self, key: str, by: int = 1) -> int:
        return int((await self._request({"cmd": "KVINCR", "key": key, "by": by}))["value"])
