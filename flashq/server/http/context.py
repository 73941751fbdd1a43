"""What every HTTP handler shares: the router, the event hub, the services, the workers seen.

Blocking commands (PULL, PULLB, WAITJOB) run in the HTTP server's own nursery, not in the
request's task: a client that hangs up mid-PULL cancels only its wait, and any job that was
handed out meanwhile is put straight back (MOVETODELAYED with delay 0 keeps its attempts),
so a vanished HTTP worker never strands a job in `active`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import trio

from flashq.protocol import routing
from flashq.server.workers import WorkerRegistry as WorkerRegistry
from flashq.server.workers import wall_ms as wall_ms

if TYPE_CHECKING:
    from flashq.config import Settings
    from flashq.server.events import EventHub
    from flashq.server.http.metrics import MetricsRecorder
    from flashq.server.http.webhooks import WebhookService
    from flashq.server.router import Router

log = logging.getLogger("flashq.http")


#: A worker is listed while its last heartbeat is younger than this (upstream: 30 s).
@attrs.define(eq=False)
class HttpContext:
    settings: Settings
    router: Router
    hub: EventHub
    nursery: trio.Nursery
    metrics: MetricsRecorder
    webhooks: WebhookService
    started_ms: int = attrs.field(factory=wall_ms)

    @property
    def workers(self) -> WorkerRegistry:
        return self.router.workers

    #: Open WebSockets (events and dashboard together), capped by `MAX_WEBSOCKETS`.
    websockets: int = 0

    def token_required(self) -> bool:
        return bool(self.settings.auth_tokens)

    async def execute(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run one client command through the router (the TCP side's code path)."""
        if cmd.get("cmd") in routing.BLOCKING:
            return await self._execute_detached(cmd)
        return await self.router.execute(cmd)

    async def execute_all(self, *cmds: dict[str, Any]) -> list[dict[str, Any]]:
        """Run independent commands concurrently; the replies in the same order."""
        replies: list[dict[str, Any]] = [{} for _ in cmds]

        async def one(i: int, cmd: dict[str, Any]) -> None:
            replies[i] = await self.execute(cmd)

        async with trio.open_nursery() as nursery:
            for i, cmd in enumerate(cmds):
                nursery.start_soon(one, i, cmd)
        return replies

    async def _execute_detached(self, cmd: dict[str, Any]) -> dict[str, Any]:
        done = trio.Event()
        box: list[dict[str, Any]] = []
        abandoned = False

        async def run() -> None:
            reply = await self.router.execute(cmd)
            box.append(reply)
            done.set()
            if abandoned:
                await self.give_back(reply)

        self.nursery.start_soon(run)
        try:
            await done.wait()
        except BaseException:
            if done.is_set():  # answered in the same instant we were cancelled
                self.nursery.start_soon(self.give_back, box[0])
            else:
                abandoned = True
            raise
        return box[0]

    async def give_back(self, reply: dict[str, Any]) -> None:
        """Return the jobs of a pull reply nobody will receive to their queues."""
        jobs = reply.get("jobs")
        if jobs is None and isinstance(reply.get("job"), dict):
            jobs = [reply["job"]]
        for job in jobs or []:
            await self.router.execute({"cmd": "MOVETODELAYED", "id": job["id"], "delay": 0})
        if jobs:
            log.info("requeued %d jobs pulled for an HTTP client that left", len(jobs))
