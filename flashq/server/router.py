"""Send each client request to the shard process that owns it, or to all of them.

The router reads only what routing needs (`cmd` and the queue, id or key) and forwards the
request object; the shard process validates and executes it and encodes the client's reply
itself, so the hot path here is a dict lookup and one buffered write. Global commands are
scattered to every shard process and merged; FLOW and GETCHILDREN are orchestrated here
because they span shards.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgpack
import orjson
import trio

from flashq.errors import ProtocolError
from flashq.protocol import link, routing
from flashq.protocol.commands import normalize
from flashq.protocol.limits import validate_job_data, validate_queue_name
from flashq.server.events import EventHub
from flashq.server.shard_link import ShardLink, error_payload
from flashq.server.workers import WorkerRegistry, wall_ms

if TYPE_CHECKING:
    from flashq.server.connection import ClientConnection

log = logging.getLogger("flashq.acceptor.router")

_ID_ALIASES = {"LOG", "GETLOGS", "HEARTBEAT"}
_ORCHESTRATED = frozenset({"FLOW", "CRON", "GETCHILDREN"})


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Router:
    def __init__(self, links: list[ShardLink], nursery: trio.Nursery, hub: EventHub) -> None:
        self.links = links
        self.nprocs = len(links)
        self.nursery = nursery
        self.hub = hub
        self.workers = WorkerRegistry()

    def link_of_shard(self, shard: int) -> ShardLink:
        return self.links[shard % self.nprocs]

    # -- the hot path ----------------------------------------------------------------------

    def route(self, conn: ClientConnection, obj: dict[str, Any], req_id: str | None) -> None:
        name = obj.get("cmd")
        shard = self.shard_for(name, obj)
        if name in _ORCHESTRATED:
            self.orchestrate(conn, obj, req_id)
            return
        if shard is not None:
            deliver = conn.slot(req_id)
            if name in routing.BLOCKING:
                deliver = self._guard_blocking(conn, name, req_id, deliver)
                if name != "WAITJOB":
                    self.workers.seen_pulling(conn.worker_id, obj["queue"], wall_ms())
            elif name == "ACK":
                self.workers.processed(conn.worker_id, 1)
            self.link_of_shard(shard).send(conn.mode, req_id, conn.id, shard, obj, deliver)
            return
        if name in routing.SCATTER or name in routing.SPLIT or name == "GETJOBS":
            if name == "ACKB" and isinstance(obj.get("ids"), list):
                self.workers.processed(conn.worker_id, len(obj["ids"]))
            proc = routing.single_process_of_ids(obj, self.nprocs)
            if proc is not None:
                deliver = conn.slot(req_id)
                self.links[proc].send(conn.mode, req_id, conn.id, link.ALL_SHARDS, obj, deliver)
                return
            self.scatter_now(conn, obj, req_id)
        else:
            self.reject(conn, obj, req_id)

    def shard_for(self, name: Any, obj: Mapping[str, Any]) -> int | None:
        """The logical shard a request goes to, or None if it is not single-shard."""
        if name in routing.BY_QUEUE or (name == "GETJOBS" and obj.get("queue") is not None):
            queue = obj.get("queue")
            return routing.shard_of_queue(queue) if isinstance(queue, str) else None
        if name in routing.BY_ID or name == "UPDATE":
            job_id = obj.get("id")
            if job_id is None and name in _ID_ALIASES:
                job_id = obj.get("job_id")
            return routing.shard_of_id(job_id) if _is_uint(job_id) else None  # type: ignore[arg-type]
        if name in routing.BY_KEY:
            key = obj.get("key")
            return routing.key_shard(key) if isinstance(key, str) else None
        return None

    def reject(self, conn: ClientConnection, obj: dict[str, Any], req_id: str | None) -> None:
        """A request that cannot be routed: let the validator say exactly why."""
        try:
            normalize(dict(obj))
            diag = "missing routing field"
        except ProtocolError as exc:
            diag = str(exc)
        conn.reply({"ok": False, "error": conn.parse_error(diag)}, req_id)

    async def execute(self, obj: dict[str, Any], conn: int = 0) -> dict[str, Any]:
        """Run one client command and return its reply object (the HTTP API's entry point).

        The same validation and engine code as the TCP path; `conn` 0 owns no blocked pulls.
        """
        name = obj.get("cmd")
        if name == "PING":
            return {"ok": True, "pong": True}
        shard = self.shard_for(name, obj)
        try:
            if shard is not None:
                return await self.one(shard, obj)
            cmd = normalize(dict(obj))
            if name in routing.SCATTER or name in routing.SPLIT or name == "GETJOBS":
                return await self.scatter(cmd)
            if name == "FLOW":
                return await self.flow(cmd)
            if name == "CRON":
                return await self.cron(cmd)
            if name == "GETCHILDREN":
                return await self.children(cmd)
            return {"ok": False, "error": f"Invalid: unknown command: {name}"}
        except ProtocolError as exc:
            return {"ok": False, "error": f"Invalid: {exc}"}

    # -- multi-shard commands (off the hot path: one task each) ----------------------------

    def scatter_now(self, conn: ClientConnection, obj: dict[str, Any], req_id: str | None) -> None:
        """Send a scattered/split command's parts now, in arrival order with everything else
        on the connection (so PUSH → STATS or ACKB → GETSTATE stay causal); merge in a task."""
        deliver = conn.slot(req_id)
        try:
            finish = self.start_scatter(normalize(dict(obj)))
        except ProtocolError as exc:
            deliver(conn.encode({"ok": False, "error": conn.parse_error(str(exc))}, req_id))
            return

        async def merge() -> None:
            deliver(conn.encode(await finish(), req_id))

        self.nursery.start_soon(merge)

    def orchestrate(self, conn: ClientConnection, obj: dict[str, Any], req_id: str | None) -> None:
        """FLOW, CRON, GETCHILDREN take several steps across shards: later requests of the
        connection wait behind a barrier until they are done, so none overtakes a step."""
        deliver = conn.slot(req_id)
        handler = {"FLOW": self.flow, "CRON": self.cron, "GETCHILDREN": self.children}[obj["cmd"]]
        conn.barrier = True

        async def run() -> None:
            try:
                reply = await handler(normalize(dict(obj)))
            except ProtocolError as exc:
                reply = {"ok": False, "error": conn.parse_error(str(exc))}
            deliver(conn.encode(reply, req_id))
            await conn.release_barrier()

        self.nursery.start_soon(run)

    def start_gather(
        self, requests: Mapping[int, tuple[int, Mapping[str, Any]]]
    ) -> Callable[[], Awaitable[dict[int, Any]]]:
        """Send {key: (process index, cmd)} now; the returned function waits for the replies."""
        results: dict[int, Any] = {}
        done = trio.Event()
        remaining = len(requests)
        if not remaining:
            done.set()

        def make_cb(key: int) -> Callable[[Any], None]:
            def cb(payload: Any) -> None:
                nonlocal remaining
                results[key] = payload
                remaining -= 1
                if remaining == 0:
                    done.set()

            return cb

        for key, (proc, cmd) in requests.items():
            self.links[proc].send(link.MODE_OBJECT, None, 0, link.ALL_SHARDS, cmd, make_cb(key))

        async def wait() -> dict[int, Any]:
            await done.wait()
            return results

        return wait

    async def gather(self, requests: Mapping[int, tuple[int, Mapping[str, Any]]]) -> dict[int, Any]:
        return await self.start_gather(requests)()

    def start_scatter(self, cmd: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
        """Send the parts of a multi-shard command now; the returned function merges."""
        name = cmd["cmd"]
        if name in routing.SPLIT:
            err = routing.split_error(cmd)
            parts = {} if err else routing.split_command(cmd, lambda s: s % self.nprocs)
            wait = self.start_gather({p: (p, sub) for p, sub in parts.items()})

            async def join() -> dict[str, Any]:
                results = await wait()
                return err or routing.join_split(cmd, parts, results)

            return join
        wait = self.start_gather({p: (p, cmd) for p in range(self.nprocs)})

        async def merge() -> dict[str, Any]:
            results = await wait()
            return routing.merge_replies(cmd, [results[p] for p in range(self.nprocs)])

        return merge

    async def scatter(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.start_scatter(cmd)()

    async def one(self, shard: int, cmd: Mapping[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self.link_of_shard(shard).request(shard, cmd)
        return reply

    async def flow(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Parent first (its id names the flow), then the children, then link them."""
        children = cmd.get("children") or []
        if not children:
            return {"ok": False, "error": "Flow must have at least one child"}
        # Refuse up front what a step would refuse, so a bad child leaves nothing behind.
        for item in (cmd, *children):
            error = validate_queue_name(item["queue"]) or validate_job_data(item.get("data"))
            if error is not None:
                return {"ok": False, "error": error}
        parent_shard = routing.shard_of_queue(cmd["queue"])
        parent = await self.one(
            parent_shard,
            {"cmd": "_FLOWPARENT", "queue": cmd["queue"], "data": cmd.get("data"),
             "priority": cmd.get("priority") or 0, "children_count": len(children)},
        )  # fmt: skip
        if not parent.get("ok"):
            return parent
        parent_id = parent["parent_id"]
        ids: list[int] = []
        for child in children:
            reply = await self.one(
                routing.shard_of_queue(child["queue"]),
                {**child, "cmd": "_FLOWCHILD", "parent_id": parent_id},
            )
            if not reply.get("ok"):
                await self.undo_flow([parent_id, *ids])
                return reply
            ids.append(reply["id"])
        linked = await self.one(
            parent_shard, {"cmd": "_FLOWCHILDREN", "parent_id": parent_id, "children_ids": ids}
        )
        if not linked.get("ok"):
            await self.undo_flow([parent_id, *ids])
            return linked
        return {"ok": True, "parent_id": parent_id, "children_ids": ids}

    async def undo_flow(self, ids: list[int]) -> None:
        """Cancel the jobs of a flow that could not be completed (best effort)."""
        for job_id in ids:
            await self.one(routing.shard_of_id(job_id), {"cmd": "CANCEL", "id": job_id})

    async def cron(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """A cron lives in its queue's shard; re-registering a name under another queue must
        not leave the old one running elsewhere, so drop the name everywhere first."""
        reply = await self.one(routing.shard_of_queue(cmd["queue"]), cmd)
        if reply.get("ok"):
            target = routing.shard_of_queue(cmd["queue"])
            await self.gather(
                {p: (p, {"cmd": "_CRONDROP", "name": cmd["name"], "keep_shard": target})
                 for p in range(self.nprocs)}
            )  # fmt: skip
        return reply

    async def children(self, cmd: dict[str, Any]) -> dict[str, Any]:
        parent_id = cmd["parent_id"]
        reply = await self.one(routing.shard_of_id(parent_id), cmd)
        if not reply.get("ok"):
            return reply
        ids = list(reply.get("children_ids") or [])
        jobs = await self.scatter({"cmd": "GETJOBSBATCH", "ids": ids})
        # Job objects (31 keys), not JobWithState: drop the state the batch lookup adds.
        reply["children"] = [
            {k: v for k, v in j.items() if k != "state"}
            for j in jobs.get("jobs", [])
            if j.get("state") != "completed"
        ]
        return reply

    async def process_stats(self) -> list[dict[str, Any]]:
        """One `_STATS` reply per shard process (a down process answers with an error)."""
        results = await self.gather({p: (p, {"cmd": "_STATS"}) for p in range(self.nprocs)})
        return [results[p] for p in range(self.nprocs)]

    # -- connection life -------------------------------------------------------------------

    def connection_closed(self, conn: ClientConnection) -> None:
        """Cancel the connection's blocked pulls in every shard process."""
        for lk in self.links:
            lk.send(link.MODE_OBJECT, None, conn.id, link.ALL_SHARDS,
                    {"cmd": "_CONNCLOSED", "conn": conn.id}, None)  # fmt: skip

    def _guard_blocking(
        self, conn: ClientConnection, name: str, req_id: str | None, deliver: Callable[[Any], None]
    ) -> Callable[[Any], None]:
        """A blocking request answered after its client left: jobs it carried go back."""
        conn.blocked += 1

        def guarded(payload: Any) -> None:
            conn.blocked -= 1
            if conn.peer_gone():
                if name != "WAITJOB":
                    self.requeue_undelivered(payload, conn)
                payload = error_payload(conn.mode, req_id, "Connection closed")
            deliver(payload)

        return guarded

    def requeue_undelivered(self, payload: Any, conn: ClientConnection) -> None:
        """A PULL reply for a closed connection: the jobs it carried go back to waiting."""
        reply = _decode_client_payload(payload, conn.mode)
        if not isinstance(reply, dict) or not reply.get("ok"):
            return
        jobs = reply.get("jobs")
        if jobs is None and isinstance(reply.get("job"), dict):
            jobs = [reply["job"]]
        ids = [j["id"] for j in jobs or [] if isinstance(j, dict) and "id" in j]
        if not ids:
            return
        by_proc: dict[int, list[int]] = {}
        for job_id in ids:
            by_proc.setdefault(routing.shard_of_id(job_id) % self.nprocs, []).append(job_id)
        for proc, proc_ids in by_proc.items():
            self.links[proc].send(link.MODE_OBJECT, None, 0, link.ALL_SHARDS,
                                  {"cmd": "_REQUEUE", "ids": proc_ids}, None)  # fmt: skip
        log.info("requeued %d jobs of closed connection %d", len(ids), conn.id)

    def on_shard_message(self, message: dict[str, Any]) -> None:
        if "outbox" in message:
            self.forward_outbox(message["outbox"])
        if "events" in message:
            self.hub.publish(message["events"])

    def forward_outbox(self, items: list[list[Any]]) -> None:
        """Cross-shard facts from one shard process, delivered to the owner of the target."""
        for shard, cmd in items:
            self.link_of_shard(shard).send(link.MODE_OBJECT, None, 0, shard, cmd, None)


def _decode_client_payload(payload: Any, mode: int) -> Any:
    if isinstance(payload, dict):
        return payload
    try:
        if mode == link.MODE_MSGPACK:
            return msgpack.unpackb(payload[4:], raw=False)
        return orjson.loads(payload)
    except Exception:
        return None
