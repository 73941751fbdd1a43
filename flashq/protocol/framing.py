"""Incremental framing of one client connection: JSON lines or length-prefixed MessagePack.

Sans-IO: bytes in, decoded request objects (or `FrameError`s) out, in arrival order. The mode is
fixed by the first byte the client sends (PROTOCOL.md §1.2). A partial frame is only appended to,
never re-scanned, so a 16 MiB request arriving in 64 KiB reads costs O(size), not O(size²).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final, final

import attrs
import msgpack
import orjson

from flashq.protocol.codec import (
    MESSAGE_TOO_LARGE,
    MSGPACK_ERROR_PREFIX,
    MSGPACK_ERRORS,
    Mode,
    dumps_json,
    pack_msgpack,
    parse_error_text,
    recover_json_req_id,
    recover_msgpack_req_id,
    reject_ext,
    unpack_msgpack,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "encode_frame",
    "encode_json",
    "encode_msgpack_frame",
]

# Upstream's binary limit (inclusive), applied to text lines too (★): no SDK sends more than
# 1 MiB of job data, and an unbounded line would let one client exhaust the acceptor's memory.
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024

# A binary frame's first byte is the top byte of a length of at most 16 MiB, so it is 0x00 or
# (for exactly 16 MiB) 0x01. Any other first byte can only be text: reading it as a length
# would doom the connection to "Message too large" (PROTOCOL §1.2 ⚠), so we read it as JSON
# and answer a precise error instead. `{`, `\n`, `\r` stay JSON as upstream.
_MSGPACK_FIRST_BYTES: Final = frozenset(b"\x00\x01")
_CR: Final = 13
_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


@final
@attrs.frozen
class FrameError:
    """A frame that could not be decoded into a request object.

    Attributes:
        message: the full wire error text (`Invalid: ...`, `MessagePack deserialize error: ...`
            or `Message too large`), ready for `{"ok": false, "error": message}`.
        req_id: the request's `reqId` when it could be recovered from the raw bytes, else None.
        fatal: True when the stream can no longer be framed (oversize frame): reply, then
            close the connection. The decoder returns nothing more after a fatal error.
    """

    message: str
    req_id: str | None
    fatal: bool


Frame = dict[str, Any] | FrameError

_TOO_LARGE: Final = FrameError(MESSAGE_TOO_LARGE, None, True)


@final
class FrameDecoder:
    """Incremental decoder for one client connection; mode chosen by the first byte.

    `feed` takes whatever the socket returned and gives back every complete frame in it:
    a dict for each request object, a `FrameError` for each frame that did not decode.
    Text mode splits on `\\n`, strips trailing `\\r`, ignores blank lines; binary mode reads
    4-byte big-endian length prefixes. A frame over `max_frame_bytes` is fatal, detected as
    soon as its length prefix (or that many bytes of an unfinished line) has arrived.
    """

    __slots__ = ("_dead", "_mode", "_stream")

    def __init__(self, *, max_frame_bytes: int = MAX_FRAME_BYTES, mode: Mode | None = None) -> None:
        self._mode: Mode | None = None
        self._stream: _JsonLines | _MsgpackFrames | _Undecided = _Undecided(max_frame_bytes)
        self._dead = False
        if mode is not None:
            self.mode = mode

    @property
    def mode(self) -> Mode | None:
        """ "json" or "msgpack"; None until the first byte arrives (or the mode is preset)."""
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        """Preset the mode (a client knows what it asked for); allowed before any byte only."""
        stream = self._stream
        if type(stream) is not _Undecided or self._dead:
            if mode != self._mode:
                raise ValueError(f"the decoder is already in {self._mode} mode")
            return
        self._stream = _JsonLines(stream.limit) if mode == "json" else _MsgpackFrames(stream.limit)
        self._mode = mode

    @property
    def buffered(self) -> int:
        """Bytes received that do not form a complete frame yet."""
        return self._stream.buffered

    def feed(self, data: bytes) -> list[Frame]:
        """Decode what `data` completes; keep the rest for the next call.

        Returns the frames in arrival order. After a fatal `FrameError` (always the last item)
        every later call returns [].
        """
        if self._dead or not data:
            return []
        stream = self._stream
        if type(stream) is _Undecided:
            self.mode = "msgpack" if data[0] in _MSGPACK_FIRST_BYTES else "json"
            stream = self._stream
        out: list[Frame] = []
        if not stream.feed(data, out):
            self._dead = True
            self._stream = _Undecided(0)  # drop the buffers
            out.append(_TOO_LARGE)
        return out


@final
class _Undecided:
    """No byte seen yet (or the stream is dead)."""

    __slots__ = ("limit",)
    buffered = 0

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def feed(self, data: bytes, out: list[Frame]) -> bool:
        raise AssertionError("unreachable")


@final
class _JsonLines:
    """Text mode: newline-delimited JSON objects."""

    __slots__ = ("_limit", "_pending")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending = bytearray()  # the unfinished line

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes, out: list[Frame]) -> bool:
        """Append the frames `data` completes to `out`; False if a line is over the limit."""
        limit = self._limit
        # bytes.split runs in C and copies only the (small) lines; the last part is the
        # unfinished line, empty when data ends with a newline.
        lines: list[bytes | bytearray] = data.split(b"\n")  # type: ignore[assignment]
        tail = lines.pop()
        if self._pending:
            pending = self._pending
            if not lines:
                pending += tail
                return len(pending) <= limit
            pending += lines[0]
            lines[0] = pending
            self._pending = bytearray()
        append = out.append
        for line in lines:
            if len(line) > limit:
                return False
            if not line:
                continue
            if line[-1] != _CR:  # the common case, inlined: no CR, a JSON object
                try:
                    obj = _loads(line)
                except _JSONDecodeError:
                    pass
                else:
                    if type(obj) is dict:
                        append(obj)
                        continue
            _json_line(line, out)
        if tail:
            if len(tail) > limit:
                return False
            self._pending = bytearray(tail)
        return True


def _new_unpacker(limit: int) -> msgpack.Unpacker:
    """A streaming decoder with the options of `codec.unpack_msgpack`.

    Its buffer holds at most one unfinished frame plus one read, so the buffer cap is ours to
    enforce. Lengths are capped at the frame limit: a container header claiming more elements
    than a frame could hold must not make the C decoder preallocate for them.
    """
    return msgpack.Unpacker(
        raw=False,
        ext_hook=reject_ext,
        timestamp=3,
        max_buffer_size=2**31 - 1,
        max_str_len=limit,
        max_bin_len=limit,
        max_array_len=limit,
        max_map_len=limit,
        max_ext_len=limit,
    )


@final
class _MsgpackFrames:
    """Binary mode: 4-byte big-endian length + one MessagePack map, streamed.

    The bytes go through one streaming C `Unpacker` (about 30% cheaper per frame than an
    `unpackb` per frame); `tell()` proves each value ends exactly at its frame's end. A frame
    that fails is decoded again from `_pending`, a copy of the bytes not consumed yet, and the
    Unpacker (whose state is undefined after an error) is replaced, resuming after that frame.
    """

    __slots__ = ("_body", "_fed", "_limit", "_pending", "_pos", "_unpacker")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._unpacker = _new_unpacker(limit)
        self._fed = 0  # stream offset just past the last byte fed
        self._pos = 0  # stream offset of the first byte not consumed (header included)
        self._body = -1  # body length of the frame whose header was consumed, else -1
        self._pending = bytearray()  # stream bytes [_pos, _fed) before this feed

    @property
    def buffered(self) -> int:
        return self._fed - self._pos + (0 if self._body < 0 else 4)

    def feed(self, data: bytes, out: list[Frame]) -> bool:
        """Append the frames `data` completes to `out`; False if a length is over the limit."""
        unpacker = self._unpacker
        unpacker.feed(data)
        start = self._pos  # stream offset of self._pending[0]
        fed_before = self._fed
        fed = self._fed = fed_before + len(data)
        pos, body, limit = start, self._body, self._limit
        append = out.append
        try:
            while True:
                if body < 0:
                    if fed - pos < 4:
                        break
                    (body,) = _unpack_header(unpacker.read_bytes(4))
                    pos += 4
                    if body > limit:
                        return False
                if fed - pos < body:
                    break
                end = pos + body
                if body:  # the common case, inlined: a well-formed map
                    try:
                        obj = unpacker.unpack()
                    except MSGPACK_ERRORS:
                        pass
                    else:
                        if type(obj) is dict and unpacker.tell() == end:
                            append(obj)
                            pos, body = end, -1
                            continue
                stream = bytes(self._pending) + data
                _msgpack_body(memoryview(stream)[pos - start : end - start], out)
                unpacker = self._unpacker = _new_unpacker(limit)
                unpacker.feed(memoryview(stream)[end - start :])
                pos, body = end, -1
        finally:
            self._keep_unconsumed(data, fed_before, pos)
            self._pos, self._body = pos, body
        return True

    def _keep_unconsumed(self, data: bytes, fed_before: int, pos: int) -> None:
        """Make `_pending` hold the stream bytes [pos, fed)."""
        if pos >= fed_before:
            self._pending = bytearray(memoryview(data)[pos - fed_before :])
        else:
            # A frame complete before this feed was consumed by an earlier one, so pos < fed_before
            # means nothing was consumed now (pos == start): the frame in progress just grew.
            self._pending += data


def _json_line(line: bytes | bytearray | memoryview, out: list[Frame]) -> None:
    """Decode one text line (without its `\\n`) into `out`; blank lines produce nothing."""
    n = len(line)
    while n and line[n - 1] == _CR:
        n -= 1
    if n == 0:
        return
    if n != len(line):
        line = line[:n]
    try:
        obj = _loads(line)
    except _JSONDecodeError as exc:
        if bytes(line).isspace():
            return  # whitespace-only line: as blank (★ upstream answers a parse error)
        out.append(FrameError(parse_error_text("json", str(exc)), recover_json_req_id(line), False))
        return
    if type(obj) is dict:
        out.append(obj)
    else:
        diag = f"expected a JSON object, got {_json_kind(obj)}"
        out.append(FrameError(parse_error_text("json", diag), None, False))


def _msgpack_body(body: memoryview, out: list[Frame]) -> None:
    """Decode one MessagePack frame body into `out`."""
    if not body:
        out.append(FrameError(MSGPACK_ERROR_PREFIX + "empty frame (length 0)", None, False))
        return
    try:
        obj = unpack_msgpack(body)
    except MSGPACK_ERRORS as exc:
        diag = str(exc) or type(exc).__name__
        out.append(
            FrameError(parse_error_text("msgpack", diag), recover_msgpack_req_id(body), False)
        )
        return
    if type(obj) is dict:
        out.append(obj)
    else:
        diag = f"expected a map, got {_json_kind(obj)}"
        out.append(FrameError(parse_error_text("msgpack", diag), None, False))


def _json_kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, int | float):
        return "a number"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, list):
        return "an array"
    return type(obj).__name__


def encode_json(obj: Mapping[str, Any]) -> bytes:
    """One reply line: compact JSON of `obj` followed by `\\n`."""
    return dumps_json(obj, newline=True)


def encode_msgpack_frame(obj: Mapping[str, Any]) -> bytes:
    """One reply frame: 4-byte big-endian length, then `obj` as a MessagePack map."""
    body = pack_msgpack(obj)
    return _pack_header(len(body)) + body


def encode_frame(mode: Mode, obj: Mapping[str, Any]) -> bytes:
    """`encode_json` or `encode_msgpack_frame`, whichever `mode` speaks."""
    if mode == "json":
        return dumps_json(obj, newline=True)
    return encode_msgpack_frame(obj)
