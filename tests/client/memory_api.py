"""An in-process stand-in for the server behind the `Api` seam (Trio or asyncio).

Just enough job semantics for the worker (push, blocking PULLB, ACK/ACKB, FAIL with
max_attempts and a DLQ, MOVETODELAYED, HEARTBEAT, PROGRESS, LOG) with no sockets, so under
Trio the worker's timing runs on the virtual clock. Every request is recorded with the
(event loop) time it arrived at.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from flashq.client._api import Api
from flashq.client._runtime import Event, Runtime, current_runtime
from flashq.client._session import Reply
from flashq.errors import ConnectionClosedError, FlashQError, NotFoundError


class MemoryApi(Api):
    def __init__(self) -> None:
        self.waiting: deque[dict[str, Any]] = deque()
        self.active: dict[int, dict[str, Any]] = {}
        self.dlq: list[dict[str, Any]] = []
        self.completed: dict[int, Any] = {}
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self.fail_next_pulls = 0
        self._ids = itertools.count(1)
        self._rt: Runtime | None = None
        self._pushed: Event | None = None

    def _wake(self) -> None:
        if self._pushed is not None:
            self._pushed.set()

    def add(self, data: Any = None, **fields: Any) -> int:
        job_id = next(self._ids)
        job = {"id": job_id, "queue": "q", "data": data, "attempts": 0, "max_attempts": 0}
        job.update(fields)
        self.waiting.append(job)
        self._wake()
        return job_id

    def sent(self, cmd: str) -> list[dict[str, Any]]:
        return [fields for _, fields in self.calls if fields["cmd"] == cmd]

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        if self._rt is None:
            self._rt = current_runtime()
        self.calls.append((self._rt.current_time(), dict(fields)))
        await self._rt.sleep(0)
        handler = getattr(self, "_cmd_" + fields["cmd"].lower())
        reply: dict[str, Any] = await handler(fields)
        return reply

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        out: list[Reply] = []
        for fields in requests:
            try:
                out.append(await self._request(fields))
            except FlashQError as exc:
                out.append(exc)
        return out

    def _take_active(self, job_id: int) -> dict[str, Any]:
        job = self.active.pop(job_id, None)
        if job is None:
            raise NotFoundError(f"Job {job_id} not found")
        return job

    async def _cmd_pullb(self, f: dict[str, Any]) -> dict[str, Any]:
        if self.fail_next_pulls:
            self.fail_next_pulls -= 1
            raise ConnectionClosedError("connection closed by the server")
        queue = f["queue"]
        rt = self._rt
        assert rt is not None
        deadline = rt.current_time() + f["timeout"] / 1000
        while not any(j["queue"] == queue for j in self.waiting):
            if self._pushed is None or self._pushed.is_set():
                self._pushed = rt.event()
            if not await rt.wait_event(self._pushed, deadline - rt.current_time()):
                break
        jobs = [j for j in self.waiting if j["queue"] == queue][: f["count"]]
        for job in jobs:
            self.waiting.remove(job)
            self.active[job["id"]] = job
        return {"ok": True, "jobs": jobs}

    async def _cmd_ack(self, f: dict[str, Any]) -> dict[str, Any]:
        self._take_active(f["id"])
        self.completed[f["id"]] = f.get("result")
        return {"ok": True}

    async def _cmd_ackb(self, f: dict[str, Any]) -> dict[str, Any]:
        n = 0
        for job_id in f["ids"]:
            if self.active.pop(job_id, None) is not None:
                self.completed[job_id] = None
                n += 1
        return {"ok": True, "ids": [n], "count": n}

    async def _cmd_fail(self, f: dict[str, Any]) -> dict[str, Any]:
        job = self._take_active(f["id"])
        job["attempts"] += 1
        job["progress_msg"] = f.get("error")
        if job["max_attempts"] and job["attempts"] >= job["max_attempts"]:
            self.dlq.append(job)
        else:
            self.waiting.append(job)
            self._wake()
        return {"ok": True}

    async def _cmd_movetodelayed(self, f: dict[str, Any]) -> dict[str, Any]:
        job = self._take_active(f["id"])
        self.waiting.append(job)  # eligible at once: tests only look at the delay sent
        self._wake()
        return {"ok": True}

    async def _cmd_heartbeat(self, f: dict[str, Any]) -> dict[str, Any]:
        if f["id"] not in self.active:
            raise NotFoundError(f"Job {f['id']} not in processing")
        return {"ok": True}

    async def _cmd_progress(self, f: dict[str, Any]) -> dict[str, Any]:
        self.active[f["id"]]["progress"] = f["progress"]
        return {"ok": True}

    async def _cmd_log(self, f: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}
