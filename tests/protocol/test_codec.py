"""Error texts, reqId handling and codec helpers (PROTOCOL.md §1.5-1.6)."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashq.errors import ValidationError, error_from_text
from flashq.protocol.codec import (
    dumps_json,
    pack_msgpack,
    parse_error_text,
    recover_req_id,
    request_id,
)
from flashq.protocol.framing import FrameDecoder, FrameError
from tests.strategies import json_objects


def test_parse_error_text_per_mode() -> None:
    assert parse_error_text("json", "missing field `data`") == "Invalid: missing field `data`"
    assert parse_error_text("msgpack", "missing field `data`") == (
        "MessagePack deserialize error: missing field `data`"
    )
    # SDKs classify both as validation errors (§6.4).
    assert isinstance(error_from_text(parse_error_text("json", "x")), ValidationError)
    assert isinstance(error_from_text(parse_error_text("msgpack", "x")), ValidationError)


@pytest.mark.parametrize(
    ("obj", "rid"),
    [({"reqId": "7"}, "7"), ({"reqId": 7}, None), ({"reqId": None}, None), ({}, None)],
)
def test_request_id_echoes_only_strings(obj: dict[str, Any], rid: str | None) -> None:
    assert request_id(obj) == rid


def test_recover_req_id_both_modes() -> None:
    assert recover_req_id("json", b'{"cmd":"X","reqId":"abc",') == "abc"
    assert recover_req_id("json", b"garbage") is None
    body = b"\x83\xa3cmd\xa4PUSH\xa4data\xc1\xa5reqId\xa1q"  # 0xc1 is never valid
    assert recover_req_id("msgpack", body) is None  # the bad value before reqId cannot be skipped
    body = b"\x83\xa3cmd\xa4PUSH\xa5reqId\xa1q\xa4data\xc1"
    assert recover_req_id("msgpack", body) == "q"
    assert recover_req_id("msgpack", b"\x92\x01\x02") is None


@given(data=st.binary(max_size=64))
def test_garbage_never_escapes_the_decoder(data: bytes) -> None:
    # Whatever bytes arrive, in either mode, the decoder returns frames or FrameErrors.
    framed = len(data).to_bytes(4, "big") + data
    for stream in (b"{" + data, b"\x00" + data, framed + framed):
        out = FrameDecoder(max_frame_bytes=1024).feed(stream)
        assert all(isinstance(f, dict | FrameError) for f in out)


@given(obj=json_objects)
def test_dumps_json_and_pack_msgpack_round_trip(obj: dict[str, Any]) -> None:
    import orjson

    assert orjson.loads(dumps_json(obj)) == obj
    assert dumps_json(obj, newline=True) == dumps_json(obj) + b"\n"
    assert msgpack.unpackb(pack_msgpack(obj), raw=False) == obj


def test_pack_msgpack_is_safe_across_threads() -> None:
    objs = [{"i": i, "s": "x" * i} for i in range(200)]
    results: dict[int, list[bytes]] = {}

    def work(n: int) -> None:
        results[n] = [pack_msgpack(o) for o in objs]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [msgpack.packb(o) for o in objs]
    assert all(r == expected for r in results.values())


def test_protocol_package_is_sans_io() -> None:
    # Importing the whole package in a fresh interpreter loads no runtime or socket module.
    code = (
        "import sys, flashq.protocol, flashq.protocol.framing, flashq.protocol.commands;"
        "bad = {'trio', 'asyncio', 'socket', 'selectors'} & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
