"""One pipelined, request-id-multiplexed Unix-socket link to a shard process.

`send` never blocks: it appends the request to an output buffer and registers a callback
for its reply; one writer task flushes the buffer (many requests per write) and one reader
task dispatches replies by link id. When the shard process dies, every request in flight gets
an error reply through its callback (never a hang) and the link reconnects by itself.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from flashq.protocol import link
from flashq.protocol.framing import encode_json, encode_msgpack_frame
from flashq.server.write_buffer import WriteBuffer, flush_all

log = logging.getLogger("flashq.acceptor.link")

#: Reply callback: receives the payload (bytes for client modes, a dict for MODE_OBJECT).
ReplyCallback = Callable[[Any], None]
#: Unsolicited messages from the shard process: {"outbox": [...]} and/or {"events": [...]}.
MessageHandler = Callable[[dict[str, Any]], None]

UNAVAILABLE = "Shard process unavailable, retry"


def error_payload(mode: int, req_id: str | None, text: str) -> Any:
    reply: dict[str, Any] = {"ok": False, "error": text}
    if mode == link.MODE_OBJECT:
        return reply
    if req_id is not None:
        reply = {"reqId": req_id, **reply}
    return encode_json(reply) if mode == link.MODE_JSON else encode_msgpack_frame(reply)


class ShardLink:
    def __init__(
        self, index: int, path: str, role: str, on_message: MessageHandler | None = None
    ) -> None:
        self.index = index
        self.path = path
        self.role = role
        self.on_message = on_message
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, str | None, ReplyCallback]] = {}
        self._out = WriteBuffer()
        self._stream: trio.SocketStream | None = None
        self.connected = trio.Event()
        self.reconnects = 0
        #: Whether the shard process should send job events (told in _HELLO and on change).
        self.events = False

    @property
    def up(self) -> bool:
        return self._stream is not None

    def send(
        self,
        mode: int,
        req_id: str | None,
        conn: int,
        shard: int,
        cmd: Mapping[str, Any],
        callback: ReplyCallback | None,
    ) -> None:
        """Queue one request; `callback` gets its reply (or an error if the link drops)."""
        if self._stream is None:
            if callback is not None:
                callback(error_payload(mode, req_id, UNAVAILABLE))
            return
        if callback is None:
            link_id = -1  # fire and forget: the shard process sends no reply
        else:
            link_id = next(self._ids)
            self._pending[link_id] = (mode, req_id, callback)
        self._out.append(link.pack([link_id, mode, req_id, conn, shard, cmd]))

    def set_events(self, on: bool) -> None:
        """Ask the shard process to send job events, or to stop building them."""
        self.events = on
        self.send(link.MODE_OBJECT, None, 0, link.ALL_SHARDS, {"cmd": "_EVENTS", "on": on}, None)

    async def request(self, shard: int, cmd: Mapping[str, Any], conn: int = 0) -> dict[str, Any]:
        """Send one request and wait for its reply object (for control paths, not the hot path)."""
        done = trio.Event()
        box: list[Any] = []

        def deliver(payload: Any) -> None:
            box.append(payload)
            done.set()

        self.send(link.MODE_OBJECT, None, conn, shard, cmd, deliver)
        await done.wait()
        result: dict[str, Any] = box[0]
        return result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve, and reconnect forever; `started` once first connected."""
        started = False
        delay = 0.01
        while True:
            try:
                stream = await trio.open_unix_socket(self.path)
            except OSError:
                await trio.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            delay = 0.01
            self._stream = stream
            self._out.reset(
                link.pack([next(self._ids), 0, None, 0, -1,
                           {"cmd": "_HELLO", "role": self.role, "events": self.events}])
            )  # fmt: skip
            self.connected.set()
            if not started:
                task_status.started()
                started = True
            else:
                self.reconnects += 1
                log.warning("link to shard process %d re-established", self.index)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, stream, nursery.cancel_scope)
                    await self._read_loop(stream)
                    nursery.cancel_scope.cancel()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                self._stream = None
                self.connected = trio.Event()
                self._fail_pending()
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            log.warning("link to shard process %d lost; reconnecting", self.index)

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for mode, req_id, callback in pending.values():
            callback(error_payload(mode, req_id, UNAVAILABLE))

    async def _write_loop(self, stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        try:
            await self._out.run(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            scope.cancel()

    async def _read_loop(self, stream: trio.SocketStream) -> None:
        decoder = link.LinkDecoder()
        while True:
            try:
                data = await stream.receive_some(1 << 18)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                # A killed process resets the socket when it dies with our bytes unread:
                # the same as EOF. (Raised here it would leave the nursery wrapped in an
                # exception group that `run` does not catch, and take the acceptor down.)
                return
            if not data:
                return
            for link_id, payload in decoder.feed(data):
                if link_id == 0:
                    if self.on_message is not None:
                        self.on_message(payload)
                    continue
                entry = self._pending.pop(link_id, None)
                if entry is not None:
                    entry[2](payload)
            flush_all()
