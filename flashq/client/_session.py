"""Sans-IO request/reply bookkeeping of one client connection.

A `Session` turns requests into wire bytes (JSON lines or MessagePack frames, with a fresh
`reqId`) and incoming bytes into `(waiter, reply)` pairs, matching replies to requests by
`reqId` so many requests can be in flight on one connection and answered in any order
(PROTOCOL.md §1.7). It does no I/O and knows nothing of the runtime: a waiter is whatever
the transport wants woken (a Trio task, an asyncio future, a blocking call's slot).
"""

from __future__ import annotations

import logging
from typing import Any, Final, Generic, TypeVar

from flashq.errors import (
    ConnectionClosedError,
    FlashQError,
    ProtocolError,
    ValidationError,
    error_from_text,
)
from flashq.protocol.framing import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    FrameError,
    encode_json,
    encode_msgpack_frame,
)

__all__ = ["Reply", "Session"]

logger = logging.getLogger(__name__)

W = TypeVar("W")

Reply = dict[str, Any] | FlashQError
"""What a request resolves to: the reply body (without `reqId`) or the error it maps to."""

# A request bigger than this would make the server send "Message too large" and close the
# connection, failing every other request in flight: refuse it locally instead.
_MAX_REQUEST_BYTES: Final = MAX_FRAME_BYTES


class Session(Generic[W]):
    """The request/reply state of one connection, generic in the waiter type.

    Args:
        binary: speak MessagePack frames instead of JSON lines.

    The transport calls `request` to get the bytes to send, `receive` with whatever the
    socket returned, and `connection_lost` once the stream is gone; each gives back the
    waiters to wake. After `connection_lost` every `request` raises the same error.
    """

    __slots__ = ("_decoder", "_encode", "_next_id", "_pending", "closed_error")

    def __init__(self, *, binary: bool = False) -> None:
        self._encode = encode_msgpack_frame if binary else encode_json
        self._decoder = FrameDecoder()
        # Replies come in the mode we speak; fixing it spares the first-byte guess.
        self._decoder.mode = "msgpack" if binary else "json"
        self._pending: dict[str, W] = {}
        self._next_id = 0
        self.closed_error: FlashQError | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered (nor forgotten) yet."""
        return len(self._pending)

    def request(self, fields: dict[str, Any], waiter: W) -> tuple[str, bytes]:
        """Register a request; return its `reqId` and the bytes to send.

        `fields` (the command with `cmd`) gets its `reqId` set in place: callers build a
        fresh dict per request, and copying it would cost more than the encoding.

        Raises:
            the connection's error when it is already lost; ValidationError when the
            encoded request exceeds the server's frame limit.
        """
        if self.closed_error is not None:
            raise type(self.closed_error)(str(self.closed_error))
        self._next_id += 1
        req_id = str(self._next_id)
        fields["reqId"] = req_id
        data = self._encode(fields)
        if len(data) > _MAX_REQUEST_BYTES:
            raise ValidationError(
                f"request too large ({len(data)} bytes, max {_MAX_REQUEST_BYTES} bytes)"
            )
        self._pending[req_id] = waiter
        return req_id, data

    def forget(self, req_id: str) -> None:
        """Stop waiting for `req_id` (cancelled or timed out); a late reply is dropped."""
        self._pending.pop(req_id, None)

    def receive(self, data: bytes) -> list[tuple[W, Reply]]:
        """Decode `data`; return the waiters answered by it with their replies, in order."""
        out: list[tuple[W, Reply]] = []
        pending = self._pending
        for frame in self._decoder.feed(data):
            if type(frame) is dict:
                req_id = frame.pop("reqId", None)
                waiter = pending.pop(req_id, None) if type(req_id) is str else None
                if waiter is None:
                    self._orphan(frame)
                    continue
                if frame.get("ok") is False:
                    out.append((waiter, error_from_text(str(frame.get("error")))))
                else:
                    out.append((waiter, frame))
            else:
                assert isinstance(frame, FrameError)
                exc = ProtocolError(f"undecodable reply from the server: {frame.message}")
                if frame.fatal:
                    out.extend(self.connection_lost(exc))
                    break
                waiter = pending.pop(frame.req_id, None) if frame.req_id is not None else None
                if waiter is not None:
                    out.append((waiter, exc))
                else:
                    logger.warning("dropped %s", exc)
        return out

    def _orphan(self, frame: dict[str, Any]) -> None:
        """A reply matching no waiter: answer to a forgotten request, or an unmatched error."""
        if frame.get("ok") is False:
            # Parse errors of upstream-style servers carry no reqId (PROTOCOL.md §1.6): the
            # request they answer can only end by its timeout. Say so in the log.
            logger.warning("server error reply without a matching reqId: %s", frame.get("error"))

    def connection_lost(self, exc: FlashQError | None = None) -> list[tuple[W, Reply]]:
        """The stream is gone: fail every pending request with `exc` (idempotent).

        Returns the waiters to wake, each with its own error instance.
        """
        if self.closed_error is None:
            self.closed_error = exc or ConnectionClosedError("connection closed by the server")
        err = self.closed_error
        failed: list[tuple[W, Reply]] = [(w, type(err)(str(err))) for w in self._pending.values()]
        self._pending.clear()
        return failed
