"""FrameDecoder and the reply encoders (PROTOCOL.md §1.2-1.6)."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashq.protocol.framing import (
    MAX_FRAME_BYTES,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_json,
    encode_msgpack_frame,
)
from tests.strategies import chunked, json_objects

TOO_LARGE = FrameError("Message too large", None, True)


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def feed_bytewise(data: bytes, **kwargs: Any) -> list[Frame]:
    decoder = FrameDecoder(**kwargs)
    return feed_all(decoder, [data[i : i + 1] for i in range(len(data))])


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def errors(frames: list[Frame]) -> list[FrameError]:
    return [f for f in frames if isinstance(f, FrameError)]


# -- round trips -------------------------------------------------------------------------------


@given(objs=st.lists(json_objects, min_size=1, max_size=3), data=st.data())
def test_json_lines_round_trip_under_any_chunking(objs: list[dict[str, Any]], data: Any) -> None:
    # Given requests encoded as JSON lines and cut at arbitrary points,
    stream = b"".join(encode_json(o) for o in objs)
    chunks = data.draw(chunked(stream))
    decoder = FrameDecoder()
    # when fed chunk by chunk, every request comes out once, in order, equal to what was sent.
    assert feed_all(decoder, chunks) == objs
    assert decoder.mode == "json"
    assert decoder.buffered == 0


@given(objs=st.lists(json_objects, min_size=1, max_size=3), data=st.data())
def test_msgpack_round_trip_under_any_chunking(objs: list[dict[str, Any]], data: Any) -> None:
    stream = b"".join(encode_msgpack_frame(o) for o in objs)
    chunks = data.draw(chunked(stream))
    decoder = FrameDecoder()
    assert feed_all(decoder, chunks) == objs
    # A map header byte (0x80-0x8f, 0xde, 0xdf) is never `{`, so the 4-byte length prefix
    # (first byte 0x00 for frames under 16 MiB) always selects binary mode.
    assert decoder.mode == "msgpack"
    assert decoder.buffered == 0


@given(objs=st.lists(json_objects, min_size=1, max_size=4), data=st.data())
def test_msgpack_resynchronises_after_bad_frames(objs: list[dict[str, Any]], data: Any) -> None:
    # Given good frames interleaved with undecodable ones (empty, truncated, trailing bytes,
    # array instead of map, a container claiming more items than the frame holds),
    bad = [b"", b"\x81\xa1a", b"\x80\x01", b"\x92\x01\x02", b"\xdc\xff\xff\x01"]
    parts: list[bytes] = []
    for i, obj in enumerate(objs):
        parts.append(frame(bad[i % len(bad)]))
        parts.append(encode_msgpack_frame(obj))
    chunks = data.draw(chunked(b"".join(parts)))
    out = feed_all(FrameDecoder(), chunks)
    # then each bad frame yields one non-fatal error and every good frame still decodes.
    assert [f for f in out if not isinstance(f, FrameError)] == objs
    assert len(errors(out)) == len(objs)
    assert all(
        not e.fatal and e.message.startswith("MessagePack deserialize error: ") for e in errors(out)
    )


def test_many_frames_in_one_feed_and_one_frame_over_many_feeds() -> None:
    objs = [{"cmd": "PUSH", "reqId": str(i), "data": {"n": i}} for i in range(50)]
    text = b"".join(encode_json(o) for o in objs)
    assert FrameDecoder().feed(text) == objs
    assert feed_bytewise(text) == objs
    binary = b"".join(encode_msgpack_frame(o) for o in objs)
    assert FrameDecoder().feed(binary) == objs
    assert feed_bytewise(binary) == objs


def test_partial_frame_is_kept_until_completed() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b'{"cmd":"PI') == []
    assert decoder.buffered == len(b'{"cmd":"PI')
    assert decoder.feed(b'NG"}\n{"cmd"') == [{"cmd": "PING"}]
    assert decoder.feed(b':"STATS"}\n') == [{"cmd": "STATS"}]
    assert decoder.buffered == 0

    decoder = FrameDecoder()
    body = msgpack.packb({"cmd": "PING"})
    data = frame(body)
    assert decoder.feed(data[:2]) == []  # half a length prefix
    assert decoder.feed(data[2:6]) == []  # rest of the prefix + part of the body
    assert decoder.buffered == 6
    assert decoder.feed(data[6:] + data[:3]) == [{"cmd": "PING"}]
    assert decoder.feed(data[3:]) == [{"cmd": "PING"}]


def test_long_line_in_small_chunks_is_linear() -> None:
    # An 8 MiB line in 4 KiB reads: 2048 feeds. Quadratic re-scanning would copy ~8 GiB here
    # and take seconds; the pytest timeout (and this assertion) catch it.
    obj = {"cmd": "PUSH", "queue": "q", "data": "x" * (8 * 1024 * 1024)}
    for line in (encode_json(obj), encode_msgpack_frame(obj)):
        decoder = FrameDecoder()
        out = feed_all(decoder, [line[i : i + 4096] for i in range(0, len(line), 4096)])
        assert out == [obj]


# -- mode detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "mode"),
    [
        (b"{", "json"),
        (b"\n", "json"),
        (b"\r", "json"),
        (b"\x00", "msgpack"),
        (b"\x01", "msgpack"),
        (b" ", "json"),
        (b"[", "json"),
        (b"\xff", "json"),
    ],
)
def test_first_byte_selects_mode(first: bytes, mode: str) -> None:
    decoder = FrameDecoder()
    assert decoder.mode is None
    assert decoder.feed(b"") == []
    assert decoder.mode is None
    decoder.feed(first)
    assert decoder.mode == mode


def test_mode_can_be_preset_before_the_first_byte() -> None:
    # A client knows which mode it asked for; the first byte then decides nothing.
    decoder = FrameDecoder(mode="json")
    assert decoder.mode == "json"
    assert decoder.feed(b' {"ok":true}\n') == [{"ok": True}]  # a space would mean binary
    decoder.mode = "json"  # unchanged: fine
    with pytest.raises(ValueError, match="already in json mode"):
        decoder.mode = "msgpack"
    decoder = FrameDecoder()
    decoder.mode = "msgpack"
    # Not blank lines: the length prefix 0x0A0A0A0A, over 16 MiB.
    assert decoder.feed(b"\n\n\n\n") == [TOO_LARGE]


def test_json_with_leading_space_is_read_as_json() -> None:
    # ⚠ upstream quirk fixed: a binary frame can only start with 0x00/0x01 (length <= 16 MiB),
    # so ' {"c' is text, not the length 0x207B2263 (~544 MB) that would close the connection.
    assert FrameDecoder().feed(b' {"cmd":"PING"}\n') == [{"cmd": "PING"}]


# -- text mode details -------------------------------------------------------------------------


def test_blank_and_whitespace_lines_are_ignored_and_crlf_works() -> None:
    data = b'\n\r\n  \t \r\n{"cmd":"PING"}\r\n\n{"cmd":"STATS"}\r\r\n'
    assert FrameDecoder().feed(data) == [{"cmd": "PING"}, {"cmd": "STATS"}]
    assert feed_bytewise(data) == [{"cmd": "PING"}, {"cmd": "STATS"}]


def test_malformed_json_is_a_non_fatal_error_with_recovered_req_id() -> None:
    out = FrameDecoder().feed(b'{"cmd":"PUSH","reqId":"r-7","data":}\n{"cmd":"PING"}\n')
    assert len(out) == 2
    err = out[0]
    assert isinstance(err, FrameError)
    assert err.message.startswith("Invalid: ")
    assert err.req_id == "r-7"
    assert not err.fatal
    assert out[1] == {"cmd": "PING"}


@pytest.mark.parametrize(
    ("line", "req_id"),
    [
        (b'{"reqId" : "a b", "cmd":', "a b"),
        (b'{"reqId":42,"cmd":}', None),  # numeric reqId is never echoed
        (b'{"reqId":"with \\" escape","cmd":}', None),  # escapes: not worth guessing
        (b'{"cmd":"PUSH",}', None),
        (b'{"reqId":"\xc3\xa9t\xc3\xa9","x":\xff}', "\u00e9t\u00e9"),
    ],
)
def test_req_id_recovery_from_text(line: bytes, req_id: str | None) -> None:
    (err,) = FrameDecoder().feed(line + b"\n")
    assert isinstance(err, FrameError)
    assert err.req_id == req_id


def test_invalid_utf8_is_a_reply_not_a_close() -> None:
    out = FrameDecoder().feed(b'{"cmd":"PUSH","reqId":"9","data":"\xff\xfe"}\n{"cmd":"PING"}\n')
    assert isinstance(out[0], FrameError)
    assert out[0].message.startswith("Invalid: ")
    assert out[0].req_id == "9"
    assert not out[0].fatal
    assert out[1] == {"cmd": "PING"}


@pytest.mark.parametrize(
    ("line", "kind"),
    [(b"[1,2]", "an array"), (b'"s"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_json_value_that_is_not_an_object(line: bytes, kind: str) -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\n")  # select text mode
    assert decoder.feed(line + b"\n") == [
        FrameError(f"Invalid: expected a JSON object, got {kind}", None, False)
    ]


# -- size cap ----------------------------------------------------------------------------------


def test_text_line_over_the_cap_is_fatal_before_its_newline_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=16)
    assert decoder.feed(b'{"a":"' + b"x" * 10) == []  # 16 bytes: at the cap, still fine
    assert decoder.feed(b"x") == [TOO_LARGE]
    assert decoder.feed(b'"}\n{"cmd":"PING"}\n') == []  # dead after a fatal error


def test_text_line_at_the_cap_is_accepted() -> None:
    line = b'{"a":"' + b"x" * 8 + b'"}'  # 16 bytes
    assert FrameDecoder(max_frame_bytes=16).feed(line + b"\n") == [{"a": "x" * 8}]
    assert FrameDecoder(max_frame_bytes=15).feed(line + b"\n") == [TOO_LARGE]
    assert feed_bytewise(line + b"\n", max_frame_bytes=15) == [TOO_LARGE]


def test_frames_before_an_oversize_frame_are_delivered() -> None:
    data = encode_json({"cmd": "PING"}) + b"{" + b" " * 100
    assert FrameDecoder(max_frame_bytes=50).feed(data) == [{"cmd": "PING"}, TOO_LARGE]
    data = encode_msgpack_frame({"cmd": "PING"}) + struct.pack(">I", 51)
    assert FrameDecoder(max_frame_bytes=50).feed(data) == [{"cmd": "PING"}, TOO_LARGE]


def test_msgpack_length_prefix_over_16_mib_is_fatal_at_once() -> None:
    decoder = FrameDecoder()
    # Exactly 16 MiB is allowed (inclusive): the decoder just waits for the body.
    assert decoder.feed(struct.pack(">I", MAX_FRAME_BYTES)) == []
    decoder = FrameDecoder()
    assert decoder.feed(struct.pack(">I", MAX_FRAME_BYTES + 1)) == [TOO_LARGE]
    assert decoder.feed(encode_msgpack_frame({"cmd": "PING"})) == []


def test_msgpack_oversize_prefix_split_across_feeds() -> None:
    prefix = struct.pack(">I", MAX_FRAME_BYTES + 1)
    decoder = FrameDecoder()
    decoder.feed(encode_msgpack_frame({"cmd": "PING"}) + prefix[:1])
    assert decoder.feed(prefix[1:3]) == []
    assert decoder.feed(prefix[3:]) == [TOO_LARGE]


# -- binary mode details -----------------------------------------------------------------------


def test_zero_length_frame_is_a_non_fatal_error() -> None:
    out = FrameDecoder().feed(frame(b"") + encode_msgpack_frame({"cmd": "PING"}))
    assert out == [
        FrameError("MessagePack deserialize error: empty frame (length 0)", None, False),
        {"cmd": "PING"},
    ]


@pytest.mark.parametrize(
    ("value", "kind"), [([1, 2], "an array"), ("s", "a string"), (7, "a number"), (None, "null")]
)
def test_msgpack_body_that_is_not_a_map(value: Any, kind: str) -> None:
    out = FrameDecoder().feed(frame(msgpack.packb(value)))
    assert out == [
        FrameError(f"MessagePack deserialize error: expected a map, got {kind}", None, False)
    ]


@pytest.mark.parametrize(
    "before_data",
    [True, False],
)
def test_req_id_recovery_from_msgpack_skips_undecodable_values(before_data: bool) -> None:
    # Given a map whose `data` holds an ext value (refused) and whose keys are in either order,
    packer = msgpack.Packer()
    pairs = [(b"\xa5reqId", packer.pack("abc")), (b"\xa4data", b"\xd4\x05\x01")]
    if not before_data:
        pairs.reverse()
    body = b"\x82" + b"".join(k + v for k, v in pairs)
    (err,) = FrameDecoder().feed(frame(body))
    # the frame is refused but its reqId is found by skipping the bad value.
    assert isinstance(err, FrameError)
    assert err.message == "MessagePack deserialize error: unsupported MessagePack ext type 5"
    assert err.req_id == "abc"


def test_msgpack_invalid_utf8_and_non_string_req_id() -> None:
    body = b"\x82\xa5reqId\xa1z\xa4data\xa2\xff\xfe"
    (err,) = FrameDecoder().feed(frame(body))
    assert isinstance(err, FrameError)
    assert err.req_id == "z"
    body = b"\x82\xa5reqId\x05\xa4data\xa2\xff\xfe"
    (err,) = FrameDecoder().feed(frame(body))
    assert isinstance(err, FrameError)
    assert err.req_id is None


def test_msgpack_bin_and_timestamp_values_are_accepted_and_re_encodable() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    body = msgpack.packb({"cmd": "PUSH", "data": {"raw": b"hi", "at": when}}, datetime=True)
    (obj,) = FrameDecoder().feed(frame(body))
    assert obj == {"cmd": "PUSH", "data": {"raw": b"hi", "at": when}}
    assert isinstance(obj, dict)
    # A JSON client reading the job later gets text for both.
    assert orjson.loads(encode_json(obj)) == {
        "cmd": "PUSH",
        "data": {"raw": "hi", "at": "2024-01-02T03:04:05+00:00"},
    }
    assert FrameDecoder().feed(encode_msgpack_frame(obj)) == [obj]


# -- encoders ----------------------------------------------------------------------------------


def test_encode_json_is_compact_with_one_newline() -> None:
    assert encode_json({"ok": True, "id": 5, "x": None}) == b'{"ok":true,"id":5,"x":null}\n'
    assert encode_frame("json", {"ok": False}) == b'{"ok":false}\n'


def test_encode_json_tolerates_what_msgpack_clients_can_send() -> None:
    # bytes map keys and bin values have no JSON form: rendered as text rather than failing.
    assert encode_json({"data": {b"k": b"\xff"}}) == b'{"data":{"k":"\xef\xbf\xbd"}}\n'


def test_encode_msgpack_frame_layout() -> None:
    obj = {"ok": True, "id": 5, "f": 1.5, "none": None}
    data = encode_msgpack_frame(obj)
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    assert msgpack.unpackb(data[4:]) == obj
    assert data[4:] == msgpack.packb(obj)  # smallest ints, float64, nil
    assert encode_frame("msgpack", obj) == data
