"""The sans-IO session: requests to bytes, reply bytes to (waiter, reply) pairs."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashq.client._session import Session
from flashq.errors import (
    ConnectionClosedError,
    NotFoundError,
    ProtocolError,
    ValidationError,
)
from flashq.protocol.framing import encode_json, encode_msgpack_frame
from tests.strategies import chunked, json_values


def test_request_sets_a_fresh_req_id_and_encodes_a_json_line():
    session: Session[str] = Session()
    rid1, data1 = session.request({"cmd": "PING"}, "w1")
    rid2, _ = session.request({"cmd": "PING"}, "w2")
    assert rid1 != rid2
    assert data1.endswith(b"\n")
    assert orjson.loads(data1) == {"cmd": "PING", "reqId": rid1}
    assert session.in_flight == 2


def test_binary_session_encodes_length_prefixed_msgpack():
    session: Session[str] = Session(binary=True)
    rid, data = session.request({"cmd": "PUSH", "queue": "q", "data": [1, "x"]}, "w")
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert msgpack.unpackb(data[4:]) == {
        "cmd": "PUSH",
        "queue": "q",
        "data": [1, "x"],
        "reqId": rid,
    }
    reply = encode_msgpack_frame({"reqId": rid, "ok": True, "id": 9})
    assert session.receive(reply) == [("w", {"ok": True, "id": 9})]


def test_replies_are_matched_by_req_id_in_any_order():
    session: Session[str] = Session()
    a, _ = session.request({"cmd": "X"}, "a")
    b, _ = session.request({"cmd": "X"}, "b")
    stream = encode_json({"reqId": b, "ok": True, "n": 2}) + encode_json(
        {"ok": True, "n": 1, "reqId": a}
    )
    assert session.receive(stream) == [("b", {"ok": True, "n": 2}), ("a", {"ok": True, "n": 1})]
    assert session.in_flight == 0


def test_error_reply_becomes_the_mapped_exception():
    session: Session[str] = Session()
    rid, _ = session.request({"cmd": "ACK", "id": 5}, "w")
    [(waiter, reply)] = session.receive(
        encode_json({"reqId": rid, "ok": False, "error": "Job 5 not found"})
    )
    assert waiter == "w"
    assert isinstance(reply, NotFoundError)
    assert str(reply) == "Job 5 not found"


def test_forgotten_and_unmatched_replies_are_dropped():
    session: Session[str] = Session()
    rid, _ = session.request({"cmd": "HANG"}, "w")
    session.forget(rid)
    late = encode_json({"reqId": rid, "ok": True})
    orphan = encode_json({"ok": False, "error": "Invalid: no reqId"})
    assert session.receive(late + orphan) == []


def test_undecodable_reply_with_a_recoverable_req_id_fails_that_request_only():
    session: Session[str] = Session()
    rid, _ = session.request({"cmd": "X"}, "bad")
    other, _ = session.request({"cmd": "X"}, "good")
    stream = (
        b'{"reqId":"' + rid.encode() + b'", nope}\n' + encode_json({"reqId": other, "ok": True})
    )
    [(w1, r1), (w2, r2)] = session.receive(stream)
    assert (w1, w2) == ("bad", "good")
    assert isinstance(r1, ProtocolError)
    assert r2 == {"ok": True}


def test_connection_lost_fails_every_pending_request_and_later_ones():
    session: Session[str] = Session()
    session.request({"cmd": "X"}, "a")
    session.request({"cmd": "X"}, "b")
    failed = session.connection_lost()
    assert sorted(w for w, _ in failed) == ["a", "b"]
    errors = [r for _, r in failed]
    assert all(isinstance(e, ConnectionClosedError) for e in errors)
    assert errors[0] is not errors[1]  # each waiter raises its own instance
    assert session.connection_lost() == []  # idempotent
    with pytest.raises(ConnectionClosedError):
        session.request({"cmd": "X"}, "c")


def test_oversize_request_is_refused_without_registering_it():
    session: Session[str] = Session()
    with pytest.raises(ValidationError, match="too large"):
        session.request({"cmd": "PUSH", "data": "x" * (16 * 1024 * 1024)}, "w")
    assert session.in_flight == 0


@given(st.data(), st.lists(json_values, min_size=1, max_size=8), st.booleans())
def test_any_chunking_of_the_reply_stream_gives_the_same_matches(
    data: st.DataObject, payloads: list[Any], binary: bool
):
    # Given several requests in flight and their replies, in reverse order,
    session: Session[int] = Session(binary=binary)
    rids = [session.request({"cmd": "X"}, i)[0] for i in range(len(payloads))]
    encode = encode_msgpack_frame if binary else encode_json
    stream = b"".join(
        encode({"reqId": rid, "ok": True, "v": v})
        for rid, v in reversed(list(zip(rids, payloads, strict=True)))
    )
    # when the stream arrives cut at arbitrary points,
    out: list[tuple[int, Any]] = []
    for chunk in data.draw(chunked(stream)):
        out.extend(session.receive(chunk))
    # then every request gets exactly its own reply.
    assert sorted(out, key=lambda p: p[0]) == [
        (i, {"ok": True, "v": v}) for i, v in enumerate(payloads)
    ]
    assert session.in_flight == 0
