"""Trio main of one shard process: serve the link socket, run the engines, group-commit, reply.

The process owns the logical shards ``{s : s % nprocs == index}``, one `ShardEngine` each.
Requests from every link (the acceptor, the coordinator) land in one pending list; a batch
(`drain`) takes everything pending, runs it through the engines, commits all their changes in
a single storage call (on the event loop without fsync, in a thread with it), and only then
writes the replies: one commit per batch, however many jobs it carries (group commit). While
a batch runs, new requests keep accumulating, so batches grow with load.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, Final, Literal, cast

import attrs
import trio

from flashq import busypoll
from flashq.errors import FlashQError, ProtocolError
from flashq.procsetup import freeze_startup_objects
from flashq.protocol import link, routing
from flashq.protocol.commands import normalize, parse_error_text
from flashq.protocol.framing import encode_json, encode_msgpack_frame
from flashq.protocol.routing import getjobs_window
from shards.engine import ShardEngine
from shards.storage import Storage

log = logging.getLogger("flashq.shard")

_PLAIN_PUSH_KEYS: Final = frozenset({"cmd", "queue", "data", "reqId"})

#: Idle wake-up bound for blocked waiters; a tick normally comes sooner.
_MAX_TIMER_S = 0.1


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class LinkPeer:
    """One connected link (acceptor or coordinator) and its pending output."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.out = bytearray()
        self.role = "unknown"
        self.closed = False


Token = tuple[LinkPeer, int, int, str | None]  # (peer, link_id, mode, req_id)


def encode_reply(mode: int, req_id: str | None, reply: Mapping[str, Any]) -> Any:
    if mode == link.MODE_OBJECT:
        return reply
    body = dict(reply) if req_id is None else {"reqId": req_id, **reply}
    if mode == link.MODE_JSON:
        return encode_json(body)
    return encode_msgpack_frame(body)


class ShardProcess:
    def __init__(
        self, index: int, nprocs: int, storage: Storage, *, inline_commits: bool = False
    ) -> None:
        #: Commit on the event loop (fsync "never": a write() into the page cache). A
        #: thread is for fsync "always", so the loop keeps reading while the disk flushes;
        #: without a flush, the hop to the thread and back cost 5-10x the commit itself
        #: (py-spy, pipelined pushes), and the busy-polling loop competed with it for the
        #: GIL. Bulk push went 225k -> 242k jobs/s, pipelined 81k -> 84k (means of 6
        #: and 12 runs, alternated).
        self.inline_commits = inline_commits
        self.index = index
        self.nprocs = nprocs
        self.storage = storage
        self.shards = routing.shards_of_process(index, nprocs)
        self.engines: dict[int, ShardEngine] = {}
        self.pending: list[tuple[LinkPeer, list[Any]]] = []
        self.wake = trio.Event()
        #: A batch is being run (by a link's task or by `run_batches`).
        self.running = False
        self.peers: set[LinkPeer] = set()
        #: Cross-shard facts for other processes while no acceptor link is up (bounded).
        self.outbox_backlog: list[tuple[int, dict[str, Any]]] = []
        self.batches = 0
        self.events_dropped = 0
        self.batch_requests = 0
        #: Whether the acceptor wants job events (it has subscribers or webhooks).
        self.publishing = False

    async def load(self) -> None:
        now = wall_ms()
        for s in self.shards:
            records = await trio.to_thread.run_sync(self.storage.load, s)
            engine = ShardEngine(s)
            engine.load(records, now)
            engine.set_publishing(self.publishing)
            self.engines[s] = engine
            log.info("shard %d loaded (%d records)", s, len(records))

    # -- serving ---------------------------------------------------------------------------

    async def serve_link(self, stream: trio.SocketStream) -> None:
        peer = LinkPeer(stream)
        self.peers.add(peer)
        decoder = link.LinkDecoder()
        try:
            while True:
                data = await stream.receive_some(1 << 18)
                if not data:
                    break
                for msg in decoder.feed(data):
                    self.pending.append((peer, msg))
                if not self.running:  # else the batch in progress takes them next
                    # Run it in this task: the hop to `run_batches` cost a sequential
                    # PUSH ~6 µs of its ~130 µs round trip.
                    await self.drain()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            peer.closed = True
            self.peers.discard(peer)
            log.info("link from %s closed", peer.role)

    async def run_batches(self) -> None:
        """Run a batch whenever the timer asks (waiter deadlines)."""
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            if not self.running:
                await self.drain(at_least_once=True)

    async def drain(self, *, at_least_once: bool = False) -> None:
        """Run batches until nothing is pending. `running` admits one caller at a time, so
        engines and storage are only ever touched by one batch and commits never overlap."""
        self.running = True
        try:
            while self.pending or at_least_once:
                at_least_once = False
                batch, self.pending = self.pending, []
                await self.run_batch(batch)
        finally:
            self.running = False

    async def run_batch(self, batch: list[tuple[LinkPeer, list[Any]]]) -> None:
        now = wall_ms()
        for engine in self.engines.values():
            deadline = engine.next_deadline()
            if deadline is not None and deadline <= now:
                engine.expire_waiters(now)
                engine.tick("wakeup", now)
        replies: list[tuple[LinkPeer, int, Any]] = []
        i, n = 0, len(batch)
        while i < n:
            peer, msg = batch[i]
            link_id, mode, req_id, conn, shard, cmd = msg
            pusher = self.plain_push_engine(shard, cmd)
            if pusher is not None:
                end = self.plain_push_run_end(batch, i)
                self.push_run(pusher, batch[i:end], replies, now)
                i = end
                continue
            i += 1
            try:
                reply = self.dispatch(peer, link_id, mode, req_id, conn, shard, cmd, now)
            except ProtocolError as exc:
                reply = {"ok": False, "error": parse_error_text(_mode_name(mode), str(exc))}
            except FlashQError as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception:
                log.exception(
                    "command failed: %r", cmd.get("cmd") if isinstance(cmd, dict) else cmd
                )
                reply = {"ok": False, "error": "Internal error"}
            if reply is not None:
                replies.append((peer, link_id, encode_reply(mode, req_id, reply)))
        await self.finish_batch(replies, now)
        self.batches += 1
        self.batch_requests += len(batch)

    async def finish_batch(self, replies: list[tuple[LinkPeer, int, Any]], now: int) -> None:
        """Deliver cross-shard facts, collect woken waiters, commit, then reply."""
        busy = self.route_outbox(now)
        for engine in busy.values():
            for token, reply in engine.take_resolved():
                owner, lid, rmode, rid = cast(Token, token)
                replies.append((owner, lid, encode_reply(rmode, rid, reply)))
        changes: dict[int, dict[str, bytes | None]] = {}
        events: list[dict[str, Any]] = []
        for s, engine in busy.items():
            ch = engine.take_changes()
            if ch:
                changes[s] = ch
            events.extend(engine.take_events())
        if changes:
            if self.inline_commits:
                self.storage.commit(changes)
            else:
                await trio.to_thread.run_sync(self.storage.commit, changes)
        for peer, link_id, payload in replies:
            if not peer.closed:
                peer.out += link.pack([link_id, payload])
        if events:
            # Published only once committed: an event never announces a change a crash undoes.
            acceptor = self.acceptor()
            if acceptor is not None:
                acceptor.out += link.pack([0, {"events": events}])
            else:
                self.events_dropped += len(events)
        await self.flush()
        # Replies are out: build the jobs of the batch's plain pushes now, while the
        # clients read them and prepare their next requests (`push.index_plain`).
        for engine in busy.values():
            engine.settle()

    def acceptor(self) -> LinkPeer | None:
        return next((p for p in self.peers if p.role == "acceptor" and not p.closed), None)

    async def flush(self) -> None:
        for peer in list(self.peers):
            if peer.out and not peer.closed:
                if peer.role == "acceptor":
                    # Clients' next requests come soon after their replies; the
                    # coordinator's timer ticks do not, so an idle server never polls.
                    busypoll.kick()
                data, peer.out = bytes(peer.out), bytearray()
                try:
                    await peer.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    peer.closed = True

    def route_outbox(self, now: int) -> dict[int, ShardEngine]:
        """Apply facts for local shards at once; queue the rest for the acceptor to forward.
        Returns the engines with effects to collect (`ShardEngine.has_effects`): a batch
        touches one or two of the process's 16, and asking each once beats calling its
        four `take_*` (11 µs per batch before, 5 after, of a ~130 µs sequential PUSH)."""
        busy = {s: engine for s, engine in self.engines.items() if engine.has_effects()}
        for _ in range(100):  # facts may cause facts; bounded so a bug cannot spin forever
            moved = False
            for engine in list(busy.values()):
                for target, cmd in engine.take_outbox():
                    moved = True
                    local = self.engines.get(target)
                    if local is not None:
                        local.execute(cmd, now)
                        busy[target] = local
                    else:
                        self.outbox_backlog.append((target, cmd))
            if not moved:
                break
        self.forward_backlog()
        return busy

    def forward_backlog(self) -> None:
        if not self.outbox_backlog:
            return
        acceptor = self.acceptor()
        if acceptor is not None:
            acceptor.out += link.unsolicited(self.outbox_backlog)
            self.outbox_backlog = []
        elif len(self.outbox_backlog) > 100_000:
            log.warning("dropping %d undeliverable cross-shard facts", len(self.outbox_backlog))
            self.outbox_backlog = self.outbox_backlog[-100_000:]

    # -- commands --------------------------------------------------------------------------

    def dispatch(
        self,
        peer: LinkPeer,
        link_id: int,
        mode: int,
        req_id: str | None,
        conn: int,
        shard: int,
        raw: Mapping[str, Any],
        now: int,
    ) -> dict[str, Any] | None:
        name = raw.get("cmd")
        if isinstance(name, str) and name.startswith("_"):
            return self.internal(peer, shard, raw, now)
        cmd = normalize(dict(raw))
        token: Token = (peer, link_id, mode, req_id)
        if shard != link.ALL_SHARDS:
            engine = self.engines.get(shard)
            if engine is None:
                return {"ok": False, "error": f"Shard {shard} is not served by this process"}
            return engine.execute(cmd, now, token=token, conn=conn)
        return self.scatter(cmd, now)

    def plain_push_engine(self, shard: int, raw: Any) -> ShardEngine | None:
        """The engine for a PUSH with no option, which needs no normalizing: the common
        pipelined PUSH skips the schema's 23-key build and the option check (5.0 vs 6.6 µs
        per PUSH here). None for anything else."""
        if (
            type(raw) is dict
            and raw.get("cmd") == "PUSH"
            and raw.keys() <= _PLAIN_PUSH_KEYS
            and "data" in raw
            and type(raw.get("queue")) is str
            and type(raw.get("reqId", "")) is str
        ):
            return self.engines.get(shard)
        return None

    def plain_push_run_end(self, batch: list[tuple[LinkPeer, list[Any]]], start: int) -> int:
        """Where the run of plain PUSHes to `batch[start]`'s shard and queue ends."""
        first = batch[start][1]
        shard, queue = first[4], first[5]["queue"]
        end = start + 1
        while end < len(batch):
            msg = batch[end][1]
            if msg[4] != shard or self.plain_push_engine(shard, msg[5]) is None:
                break
            if msg[5]["queue"] != queue:
                break
            end += 1
        return end

    def push_run(
        self,
        engine: ShardEngine,
        run: list[tuple[LinkPeer, list[Any]]],
        replies: list[tuple[LinkPeer, int, Any]],
        now: int,
    ) -> None:
        """Consecutive plain PUSHes to one queue (a pipelining client's, or a lone one) in one
        engine call, the PUSHB path: 17% less CPU in the shard process over pipelined pushes.
        Each still gets its own reply."""
        try:
            results = engine.push_plain_run(
                run[0][1][5]["queue"], [m[5]["data"] for _, m in run], now
            )
        except Exception:
            log.exception("command failed: PUSH (a run of %d)", len(run))
            results = [{"ok": False, "error": "Internal error"} for _ in run]
        for (peer, msg), reply in zip(run, results, strict=True):
            replies.append((peer, msg[0], encode_reply(msg[1], msg[2], reply)))

    def scatter(self, cmd: dict[str, Any], now: int) -> dict[str, Any]:
        name = cmd["cmd"]
        if name in routing.SPLIT:
            return self.split(cmd, now)
        if name == "GETJOBS":
            # Each engine returns its newest `window` jobs; the acceptor pages the merge.
            window = getjobs_window(cmd)
            sub = {**cmd, "_window": window}
            replies = [e.execute(sub, now) or {"ok": True} for e in self.engines.values()]
            return routing.merge_replies({**cmd, "offset": 0, "limit": window}, replies)
        replies = [e.execute(cmd, now) or {"ok": True} for e in self.engines.values()]
        return routing.merge_replies(cmd, replies)

    def split(self, cmd: dict[str, Any], now: int) -> dict[str, Any]:
        parts = routing.split_command(cmd)
        results: dict[int, dict[str, Any]] = {}
        for s, sub in parts.items():
            engine = self.engines.get(s)
            if engine is not None:
                results[s] = engine.execute(sub, now) or {"ok": True}
        return routing.join_split(cmd, parts, results)

    def internal(
        self, peer: LinkPeer, shard: int, cmd: Mapping[str, Any], now: int
    ) -> dict[str, Any] | None:
        name = cmd["cmd"]
        if name == "_HELLO":
            peer.role = str(cmd.get("role", "unknown"))
            log.info("link from %s", peer.role)
            if peer.role == "acceptor":
                self.set_publishing(bool(cmd.get("events")))
            return {"ok": True, "index": self.index, "shards": self.shards, "pid": os.getpid()}
        if name == "_EVENTS":
            self.set_publishing(bool(cmd.get("on")))
            return None
        if name == "_TICK":
            for engine in self.engines.values():
                engine.tick(str(cmd["kind"]), now)
            return {"ok": True}
        if name == "_CONNCLOSED":
            for engine in self.engines.values():
                engine.cancel_conn(int(cmd["conn"]))
            return None
        if name == "_REQUEUE":
            by_shard: dict[int, list[int]] = {}
            for job_id in cmd["ids"]:
                by_shard.setdefault(routing.shard_of_id(int(job_id)), []).append(int(job_id))
            for s, ids in by_shard.items():
                if s in self.engines:
                    self.engines[s].requeue(ids, now)
            return None
        if name == "_CRONDROP":
            for s, engine in self.engines.items():
                if s != cmd["keep_shard"]:
                    engine.execute({"cmd": "CRONDELETE", "name": cmd["name"]}, now)
            return {"ok": True}
        if name == "_STATS":
            return {"ok": True, **self.statistics(now)}
        # Cross-shard facts and flow steps are engine commands addressed to one shard.
        targets = self.engines.values() if shard == link.ALL_SHARDS else [self.engines[shard]]
        reply: dict[str, Any] | None = {"ok": True}
        for engine in targets:
            reply = engine.execute(cmd, now)
        return reply

    def set_publishing(self, on: bool) -> None:
        self.publishing = on
        for engine in self.engines.values():
            engine.set_publishing(on)

    def statistics(self, now: int) -> dict[str, Any]:
        """Per-process gauges for /metrics and the dashboard (which shard process is hot)."""
        storage = attrs.asdict(self.storage.statistics())
        storage = {k: v for k, v in storage.items() if not isinstance(v, Mapping)}
        return {
            "index": self.index,
            "pid": os.getpid(),
            "shards": self.shards,
            "batches": self.batches,
            "requests": self.batch_requests,
            "avg_batch": round(self.batch_requests / self.batches, 2) if self.batches else 0.0,
            "events_dropped": self.events_dropped,
            "busy_polls": busypoll.polls(),
            "publishing": self.publishing,
            "latency": [pair for e in self.engines.values() for pair in e.latency()],
            "engines": {s: attrs.asdict(e.statistics()) for s, e in self.engines.items()},
            "storage": storage,
        }

    # -- timers ----------------------------------------------------------------------------

    async def run_timer(self) -> None:
        """Wake the batch loop at the earliest waiter deadline so blocked pulls end on time."""
        while True:
            now = wall_ms()
            deadlines = [d for e in self.engines.values() if (d := e.next_deadline()) is not None]
            delay = _MAX_TIMER_S
            if deadlines:
                # At least 2 ms: a deadline that cannot be served yet must not spin the loop.
                delay = min(delay, max(0.002, (min(deadlines) - now) / 1000))
            await trio.sleep(delay)
            if deadlines and min(deadlines) <= wall_ms():
                self.wake.set()


def tune_gc() -> None:
    """Keep the cyclic GC off the hot path of a process that holds millions of live objects.

    Jobs are long-lived and (once out of their heaps) free of cycles, yet every 700
    allocations the default GC rescans the young ones and, periodically, everything: ~15% of
    PUSHB instructions (callgrind) and multi-100-ms pauses with 1M jobs. What `load` built
    is frozen out of collection; young collections become rare.
    """
    freeze_startup_objects()
    gc.set_threshold(100_000, 50, 1000)
    release_free_memory()


def release_free_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc's malloc_trim; a no-op elsewhere).

    Loading a million jobs goes through transient records and outgrown dict tables; freed,
    they stay in the process's heap (~10% of its RSS) unless trimmed once the load is done.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        pass


def _mode_name(mode: int) -> Literal["json", "msgpack"]:
    return "msgpack" if mode == link.MODE_MSGPACK else "json"


async def serve(
    index: int,
    nprocs: int,
    socket_path: str,
    storage: Storage,
    *,
    inline_commits: bool = False,
    busy_poll_us: int = 0,
) -> None:
    proc = ShardProcess(index, nprocs, storage, inline_commits=inline_commits)
    await proc.load()
    tune_gc()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)  # stale socket of a previous (killed) incarnation
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(socket_path)
    listener.listen(64)
    listeners = [trio.SocketListener(listener)]
    log.info("shard process %d/%d serving shards %s on %s", index, nprocs, proc.shards, socket_path)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.run_batches)
            nursery.start_soon(proc.run_timer)
            nursery.start_soon(busypoll.serve, busy_poll_us)
            nursery.start_soon(trio.serve_listeners, proc.serve_link, listeners)
    finally:
        # The storage is written only inside finish_batch; nothing is pending here.
        storage.close()
