"""The wire protocol end to end, through the real multi-process server."""

from __future__ import annotations

import struct
import time
from typing import Any

import msgpack
import orjson
import pytest

from flashq.protocol.routing import shard_of_queue
from tests.harness import ServerProcess, read_replies


def send_lines(srv: ServerProcess, *objs: object) -> list[dict[str, Any]]:
    with srv.connect() as s:
        s.sendall(b"".join(orjson.dumps(o) + b"\n" for o in objs))
        return list(read_replies(s, len(objs)))


def test_json_push_and_getjob(server: ServerProcess) -> None:
    (push,) = send_lines(server, {"cmd": "PUSH", "queue": "emails", "data": {"to": "a@b.c"}})
    assert push["ok"] is True
    job_id = push["id"]
    assert isinstance(job_id, int)
    # The id carries the queue's shard (DESIGN: id = seq * 32 + shard).
    assert job_id % 32 == shard_of_queue("emails")
    (got,) = send_lines(server, {"cmd": "GETJOB", "id": job_id, "reqId": "r1"})
    assert got["reqId"] == "r1"
    assert got["state"] == "waiting"
    assert got["job"]["data"] == {"to": "a@b.c"}


def msgpack_frame(obj: object) -> bytes:
    body = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


def read_frames(sock, n: int) -> list[dict[str, Any]]:
    buf = b""
    out: list[dict[str, object]] = []
    sock.settimeout(10)
    while len(out) < n:
        data = sock.recv(1 << 16)
        assert data, "connection closed"
        buf += data
        while len(buf) >= 4:
            (size,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + size:
                break
            out.append(msgpack.unpackb(buf[4 : 4 + size]))
            buf = buf[4 + size :]
    return out


def test_msgpack_mode(server: ServerProcess) -> None:
    with server.connect() as s:
        s.sendall(
            msgpack_frame({"cmd": "PUSH", "queue": "bin", "data": {"x": 1}, "reqId": "a"})
            + msgpack_frame({"cmd": "PULL", "queue": "bin", "timeout": 1000, "reqId": "b"})
        )
        push, pull = sorted(read_frames(s, 2), key=lambda r: str(r["reqId"]))
        assert push["ok"] is True
        assert pull["job"]["id"] == push["id"]
        assert pull["job"]["data"] == {"x": 1}


def test_pipelined_without_reqid_answers_in_order(server: ServerProcess) -> None:
    # PUSH then GETSTATE of a job of another queue, 50 times, in one write.
    objs: list[object] = []
    for i in range(50):
        objs.append({"cmd": "PUSH", "queue": f"q{i % 7}", "data": i})
        objs.append({"cmd": "STATS"})
    replies = send_lines(server, *objs)
    for i in range(50):
        assert "id" in replies[2 * i], replies[2 * i]
        assert "queued" in replies[2 * i + 1]


def test_pipelined_with_reqid_all_answered(server: ServerProcess) -> None:
    objs = [{"cmd": "PUSH", "queue": f"p{i % 5}", "data": i, "reqId": str(i)} for i in range(500)]
    replies = send_lines(server, *objs)
    assert sorted(int(str(r["reqId"])) for r in replies) == list(range(500))
    assert len({r["id"] for r in replies}) == 500


def test_pipelined_plain_pushes_each_get_their_own_reply(server: ServerProcess) -> None:
    """The shard process pushes a run of option-less PUSHes to one queue in one engine call
    (the PUSHB path): each must still get its own reply, in order, errors in their place."""
    objs: list[dict[str, Any]] = [{"cmd": "PUSH", "queue": "runs", "data": i} for i in range(100)]
    objs[10] = {"cmd": "PUSH", "queue": "runs", "data": "x" * (10 * 1024 * 1024 + 10)}
    objs[20:23] = [{"cmd": "PUSH", "queue": "bad queue!", "data": i} for i in range(3)]
    objs[30:32] = [{"cmd": "PUSH", "queue": "runs-other", "data": i} for i in range(2)]
    objs[40] = {"cmd": "PUSH", "queue": "runs", "data": 40, "priority": 0}  # not plain
    objs[50] = {"cmd": "PUSH", "queue": "runs", "data": "y" * (600 * 1024)}  # fits, 1-by-1
    replies = send_lines(server, *objs)
    errors = {i: str(r["error"]) for i, r in enumerate(replies) if r["ok"] is False}
    assert errors.keys() == {10, 20, 21, 22}
    assert errors[10].startswith("Job data too large")
    assert all(errors[i].startswith("Queue name must") for i in (20, 21, 22)), errors
    runs = [i for i in range(100) if i not in errors and i not in (30, 31)]
    ids = [replies[i]["id"] for i in runs]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(runs)
    with server.client() as client:
        assert client.count("runs") == len(runs)
        assert client.count("runs-other") == 2
        pulled = client.pull_batch("runs", 200, timeout=1000)
        assert [job.id for job in pulled] == ids  # same priority: push order
        assert [job.data for job in pulled][:11] == [i for i in range(12) if i != 10]
        assert len(pulled[runs.index(50)].data) == 600 * 1024


def test_blocked_pull_does_not_delay_later_push(server: ServerProcess) -> None:
    with server.connect() as s:
        s.sendall(
            orjson.dumps({"cmd": "PULL", "queue": "empty", "timeout": 3000, "reqId": "pull"})
            + b"\n"
            + orjson.dumps({"cmd": "PUSH", "queue": "other", "data": 1, "reqId": "push"})
            + b"\n"
        )
        first = next(read_replies(s, 1))
        # The PUSH is answered while the PULL is still waiting for its 3 s timeout.
        assert first["reqId"] == "push"
        second = next(read_replies(s, 1))
        assert second == {"reqId": "pull", "ok": True, "job": None}


def test_blocked_pull_woken_by_push_from_other_connection(server: ServerProcess) -> None:
    with server.connect() as puller:
        puller.sendall(orjson.dumps({"cmd": "PULL", "queue": "wake", "timeout": 10000}) + b"\n")
        time.sleep(0.2)
        (pushed,) = send_lines(server, {"cmd": "PUSH", "queue": "wake", "data": "hi"})
        (pulled,) = read_replies(puller, 1)
        assert pulled["job"]["id"] == pushed["id"]


def test_ids_route_across_shard_processes(server: ServerProcess) -> None:
    # Queues on shards owned by both processes (shard % 2 == 0 and == 1).
    queues = [f"route{i}" for i in range(40)]
    assert {shard_of_queue(q) % 2 for q in queues} == {0, 1}
    pushes = send_lines(server, *[{"cmd": "PUSH", "queue": q, "data": q} for q in queues])
    ids = [p["id"] for p in pushes]
    states = send_lines(server, *[{"cmd": "GETJOB", "id": i} for i in ids])
    assert [st["job"]["queue"] for st in states] == queues
    acks = send_lines(
        server,
        *[{"cmd": "PULL", "queue": q, "timeout": 1000} for q in queues],
    )
    done = send_lines(server, *[{"cmd": "ACK", "id": a["job"]["id"]} for a in acks])
    assert all(d["ok"] for d in done)
    states = send_lines(server, *[{"cmd": "GETSTATE", "id": i} for i in ids])
    assert {st["state"] for st in states} == {"completed"}


def test_pushb_pullb_ackb(server: ServerProcess) -> None:
    jobs = [{"data": {"i": i}} for i in range(1000)]
    (pushed,) = send_lines(server, {"cmd": "PUSHB", "queue": "bulk", "jobs": jobs})
    assert len(pushed["ids"]) == 1000
    (pulled,) = send_lines(
        server, {"cmd": "PULLB", "queue": "bulk", "count": 1000, "timeout": 1000}
    )
    ids = [j["id"] for j in pulled["jobs"]]
    assert sorted(ids) == sorted(pushed["ids"])
    # Ids of the batch span shards: ACKB is split across shard processes and summed.
    (acked,) = send_lines(server, {"cmd": "ACKB", "ids": [*ids, 999_999_999]})
    assert acked["ids"] == [1000]
    assert acked["count"] == 1000
    (counts,) = send_lines(server, {"cmd": "GETJOBCOUNTS", "queue": "bulk"})
    assert counts["waiting"] == 0
    assert counts["completed"] == 1000


def test_fail_retries_then_dead_letters(server: ServerProcess) -> None:
    (p,) = send_lines(server, {"cmd": "PUSH", "queue": "f", "data": 1, "max_attempts": 2})
    for _ in range(2):
        (pulled,) = send_lines(server, {"cmd": "PULL", "queue": "f", "timeout": 1000})
        assert pulled["job"]["id"] == p["id"]
        (failed,) = send_lines(server, {"cmd": "FAIL", "id": p["id"], "error": "boom"})
        assert failed == {"ok": True}
    (st,) = send_lines(server, {"cmd": "GETSTATE", "id": p["id"]})
    assert st["state"] == "failed"
    (dlq,) = send_lines(server, {"cmd": "DLQ", "queue": "f"})
    assert [j["id"] for j in dlq["jobs"]] == [p["id"]]


def test_ack_result_and_getresult(server: ServerProcess) -> None:
    (p,) = send_lines(server, {"cmd": "PUSH", "queue": "r", "data": 1})
    send_lines(server, {"cmd": "PULL", "queue": "r", "timeout": 1000})
    (a,) = send_lines(server, {"cmd": "ACK", "id": p["id"], "result": {"sum": 3}})
    assert a["ok"] is True
    (r,) = send_lines(server, {"cmd": "GETRESULT", "id": p["id"]})
    assert r == {"ok": True, "id": p["id"], "result": {"sum": 3}}
    (again,) = send_lines(server, {"cmd": "ACK", "id": p["id"]})
    assert again == {"ok": False, "error": f"Job {p['id']} not found"}


def test_listqueues_and_stats_merge_all_processes(server: ServerProcess) -> None:
    queues = [f"lq{i}" for i in range(10)]
    send_lines(server, *[{"cmd": "PUSH", "queue": q, "data": None} for q in queues])
    (lq,) = send_lines(server, {"cmd": "LISTQUEUES"})
    names = {q["name"] for q in lq["queues"]}
    assert set(queues) <= names
    (stats,) = send_lines(server, {"cmd": "STATS"})
    assert stats["queued"] == 10


@pytest.mark.parametrize(
    ("request_obj", "error"),
    [
        ({"cmd": "PUSH", "queue": "", "data": 1}, "Queue name cannot be empty"),
        ({"cmd": "PUSH", "queue": "x" * 257, "data": 1}, "Queue name too long (max 256 chars)"),
        (
            {"cmd": "PUSH", "queue": "bad name!", "data": 1},
            "Queue name must contain only alphanumeric characters, underscores, hyphens, or dots",
        ),
        ({"cmd": "NOPE", "reqId": "u"}, None),
        ({"cmd": "PUSH", "queue": "q", "data": 1, "priority": "high"}, None),
        ({"cmd": "ACK", "id": -1}, None),
    ],
)
def test_bad_requests_get_errors_and_connection_stays_up(
    server: ServerProcess, request_obj: dict[str, object], error: str | None
) -> None:
    with server.connect() as s:
        s.sendall(orjson.dumps(request_obj) + b"\n" + b'{"cmd":"PING","reqId":"after"}\n')
        # Replies to requests with a reqId may overtake others: match by content.
        replies = list(read_replies(s, 2))
        (ping,) = [r for r in replies if r.get("reqId") == "after"]
        (bad,) = [r for r in replies if r.get("reqId") != "after"]
        assert bad["ok"] is False
        if error is not None:
            assert bad["error"] == error
        else:
            assert str(bad["error"]).startswith("Invalid: ")
        if "reqId" in request_obj:
            assert bad["reqId"] == request_obj["reqId"]  # PROTOCOL §1.6 ★
        assert ping == {"reqId": "after", "ok": True, "pong": True}


def test_oversize_data_rejected(server: ServerProcess) -> None:
    big = "x" * (10 * 1024 * 1024 + 10)
    (r,) = send_lines(server, {"cmd": "PUSH", "queue": "big", "data": big, "reqId": "big"})
    assert r["ok"] is False
    assert str(r["error"]).startswith("Job data too large (~")
    assert r["reqId"] == "big"


def test_pushb_over_1000_returns_no_ids(server: ServerProcess) -> None:
    (r,) = send_lines(server, {"cmd": "PUSHB", "queue": "b", "jobs": [{"data": 1}] * 1001})
    assert r == {"ok": True, "ids": []}
    (c,) = send_lines(server, {"cmd": "COUNT", "queue": "b"})
    assert c["count"] == 0


def test_malformed_json_keeps_connection(server: ServerProcess) -> None:
    with server.connect() as s:
        s.sendall(b'{"cmd":"PUSH","reqId":"m", nope}\n{"cmd":"PING"}\n')
        bad, ping = read_replies(s, 2)
        assert str(bad["error"]).startswith("Invalid: ")
        assert bad["reqId"] == "m"  # recovered from the raw text (★)
        assert ping["pong"] is True


def test_oversize_frame_closes_only_that_connection(server: ServerProcess) -> None:
    with server.connect() as s, server.connect() as neighbour:
        s.sendall(struct.pack(">I", 16 * 1024 * 1024 + 1) + b"\x80")
        s.settimeout(10)
        data = s.recv(1 << 16)
        (size,) = struct.unpack(">I", data[:4])
        assert msgpack.unpackb(data[4 : 4 + size]) == {"ok": False, "error": "Message too large"}
        assert s.recv(10) == b""  # closed
        neighbour.sendall(b'{"cmd":"PING"}\n')
        assert next(read_replies(neighbour, 1))["pong"] is True
