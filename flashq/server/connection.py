"""One client connection: read frames, gate on AUTH, hand each request to the router, and
write replies in the order the protocol requires.

Requests with a `reqId` are answered as soon as their reply exists (clients match by reqId,
so a blocked PULL never holds up later requests, PROTOCOL §1.7 ★). Requests without one are
answered strictly in arrival order: their replies wait in `_ordered` until every earlier
one has been written. Commands are still forwarded in arrival order, so a pipelined
PUSH → GETSTATE stays causal.
"""

from __future__ import annotations

import collections
import hmac
import itertools
import logging
import select
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from flashq.errors import ProtocolError
from flashq.protocol import link
from flashq.protocol.commands import normalize
from flashq.protocol.framing import FrameDecoder, FrameError, encode_json, encode_msgpack_frame
from flashq.server.write_buffer import WriteBuffer, flush_all

if TYPE_CHECKING:
    from flashq.server.router import Router

log = logging.getLogger("flashq.acceptor.conn")

#: Stop reading from a client that does not read its replies once this much is buffered.
_MAX_OUTPUT_BYTES = 16 * 1024 * 1024
#: Stop reading from a client with this many requests in flight (bounded memory).
_MAX_IN_FLIGHT = 20_000
#: Failed AUTH attempts allowed before each further attempt is slowed down.
_AUTH_FREE_FAILURES = 3

_conn_ids = itertools.count(1)
#: poll() events meaning the peer closed (or shut down its sending side) or the socket failed.
_HANGUP = select.POLLRDHUP | select.POLLHUP | select.POLLERR


def _peer_name(stream: trio.abc.Stream) -> str:
    sock = getattr(stream, "socket", None)
    try:
        peer = sock.getpeername() if sock is not None else None
    except OSError:
        peer = None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "unix"


class ClientConnection:
    def __init__(self, stream: trio.abc.Stream, router: Router, tokens: tuple[str, ...]) -> None:
        self.stream = stream
        self.router = router
        self.tokens = tokens
        self.id = next(_conn_ids)
        #: How GET /workers names this connection if it pulls jobs.
        self.worker_id = f"tcp-{self.id}@{_peer_name(stream)}"
        self.authed = not tokens
        self.auth_failures = 0
        self.decoder = FrameDecoder()
        self.mode = link.MODE_JSON
        self.closed = False
        self._out = WriteBuffer()
        self._next_seq = 0  # next ordered (no reqId) slot to hand out
        self._write_seq = 0  # next ordered slot whose reply may be written
        self._ordered: dict[int, bytes] = {}
        self.in_flight = 0
        #: The client finished sending (EOF); replies still in flight are written.
        self.eof = False
        #: Blocking requests (PULL, PULLB, WAITJOB) in flight; not waited for at EOF.
        self.blocked = 0
        self._closed_reported = False
        #: Up while a multi-step command (FLOW, CRON, GETCHILDREN) runs; later requests wait.
        self.barrier = False
        self.deferred: collections.deque[dict[str, Any]] = collections.deque()

    # -- output ----------------------------------------------------------------------------

    def encode(self, reply: dict[str, Any], req_id: str | None) -> bytes:
        body = reply if req_id is None else {"reqId": req_id, **reply}
        if self.mode == link.MODE_MSGPACK:
            return encode_msgpack_frame(body)
        return encode_json(body)

    def slot(self, req_id: str | None) -> Callable[[Any], None]:
        """Reserve the reply position for one request; returns its delivery callback."""
        self.in_flight += 1
        if req_id is not None:
            return self._deliver_now
        seq = self._next_seq
        self._next_seq += 1

        def deliver(payload: Any) -> None:
            self._deliver_ordered(seq, payload)

        return deliver

    def _deliver_now(self, payload: Any) -> None:
        self.in_flight -= 1
        if self.closed:
            return
        self._out.append(payload)

    def _deliver_ordered(self, seq: int, payload: Any) -> None:
        self.in_flight -= 1
        if self.closed:
            return
        self._ordered[seq] = payload
        while self._write_seq in self._ordered:
            self._out.append(self._ordered.pop(self._write_seq))
            self._write_seq += 1

    def reply(self, reply: dict[str, Any], req_id: str | None) -> None:
        """Answer a request locally (AUTH, PING, errors found by the acceptor)."""
        self.slot(req_id)(self.encode(reply, req_id))

    # -- serving ---------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, nursery.cancel_scope)
                await self._read_loop()
                # Reader done (EOF or fatal frame): cancel our blocked pulls at once (a job
                # must not go to a client that left), then let other replies out, briefly.
                self.eof = True
                self.report_closed()
                self._out.poke()
                with trio.move_on_after(2):
                    while (self.in_flight > self.blocked or self._out.busy) and not self.closed:
                        await self._out.wait_drained()
                nursery.cancel_scope.cancel()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.closed = True
            self.report_closed()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    def peer_gone(self) -> bool:
        """Has the client hung up, even if our reader has not seen the EOF yet?

        Checked before handing a client a job: a PULL reply written to a socket whose peer
        already closed would be accepted by the kernel and lost with the job still active.
        """
        if self.closed or self.eof:
            return True
        sock = getattr(self.stream, "socket", None)
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), _HANGUP)
        return bool(poller.poll(0))

    def report_closed(self) -> None:
        if not self._closed_reported:
            self._closed_reported = True
            self.router.connection_closed(self)

    async def _write_loop(self, scope: trio.CancelScope) -> None:
        try:
            await self._out.run(self.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True
            scope.cancel()

    async def _read_loop(self) -> None:
        while True:
            if (
                len(self._out) > _MAX_OUTPUT_BYTES
                or self.in_flight + len(self.deferred) > _MAX_IN_FLIGHT
            ):
                await self._out.wait_drained()
                continue
            try:
                data = await self.stream.receive_some(1 << 16)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            items = self.decoder.feed(bytes(data))
            if self.decoder.mode == "msgpack":
                self.mode = link.MODE_MSGPACK
            for item in items:
                if isinstance(item, FrameError):
                    self.reply({"ok": False, "error": item.message}, item.req_id)
                    if item.fatal:
                        return
                    continue
                await self.handle(item)
            flush_all()

    async def handle(self, obj: dict[str, Any]) -> None:
        if self.barrier or self.deferred:
            self.deferred.append(obj)
            return
        await self.handle_now(obj)

    async def release_barrier(self) -> None:
        """A multi-step command finished: run what arrived meanwhile, in order."""
        self.barrier = False
        while self.deferred and not self.barrier and not self.closed:
            await self.handle_now(self.deferred.popleft())

    async def handle_now(self, obj: dict[str, Any]) -> None:
        req_id = obj.get("reqId")
        if req_id is not None and not isinstance(req_id, str):
            self.reply({"ok": False, "error": self.parse_error("reqId must be a string")}, None)
            return
        name = obj.get("cmd")
        if name == "AUTH":
            await self.auth(obj, req_id)
            return
        if not self.authed:
            # Parse errors stay parse errors (PROTOCOL §1.8); valid requests need a token.
            try:
                if not isinstance(name, str) or name.startswith("_"):
                    raise ProtocolError(f"unknown command: {name}")
                normalize(dict(obj))
            except ProtocolError as exc:
                self.reply({"ok": False, "error": self.parse_error(str(exc))}, req_id)
                return
            self.reply({"ok": False, "error": "Authentication required"}, req_id)
            return
        if name == "PING":
            self.reply({"ok": True, "pong": True}, req_id)
            return
        self.router.route(self, obj, req_id)

    def parse_error(self, diag: str) -> str:
        if self.mode == link.MODE_MSGPACK:
            return f"MessagePack deserialize error: {diag}"
        return f"Invalid: {diag}"

    async def auth(self, obj: dict[str, Any], req_id: str | None) -> None:
        token = obj.get("token")
        if not isinstance(token, str):
            self.reply({"ok": False, "error": self.parse_error("missing field `token`")}, req_id)
            return
        if not self.tokens:
            self.reply({"ok": True}, req_id)
            return
        given = token.encode()
        # Compare against every token so timing does not reveal which one nearly matched.
        ok = False
        for t in self.tokens:
            ok |= hmac.compare_digest(given, t.encode())
        if ok:
            self.authed = True
            self.auth_failures = 0
            self.reply({"ok": True}, req_id)
            return
        self.auth_failures += 1
        extra = self.auth_failures - _AUTH_FREE_FAILURES
        if extra > 0:
            # Slow brute force down on this connection only: 0.1 s, 0.2 s ... capped at 5 s.
            await trio.sleep(min(5.0, 0.1 * 2 ** (extra - 1)))
        log.warning("failed AUTH on connection %d (%d so far)", self.id, self.auth_failures)
        self.reply({"ok": False, "error": "Invalid token"}, req_id)
