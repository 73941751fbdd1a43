"""Protocol conformance through the real server (2 shard processes): transport and core.

Every command of PROTOCOL.md §2 is sent over a raw socket and its reply checked against the
documented shape: exact key sets (and order, for Job objects), value types, the additive ★
fields of §6.5, the exact error texts of §4.2 and the `reqId` echo. Where our server departs
from upstream on purpose (a ★ extension, a §6.6 fix, an "Our server's choice" note or a
DESIGN.md decision) the test asserts our behaviour and says so; a departure that is a bug is
asserted as documented (the seven the first audit found are fixed: docs/commands.md).

This module also holds the helpers the other `test_conformance_*` modules import: `Wire` (one
JSON-lines connection), `MsgWire` (MessagePack frames), the key lists of §3, `check_job`, and
`queue_on` (a queue name owned by a chosen shard process, for cross-shard cases).
"""

from __future__ import annotations

import itertools
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import msgpack
import orjson
import pytest

from flashq.protocol.routing import process_of_shard, shard_of_id, shard_of_queue
from tests.harness import ServerProcess

NPROCS: Final = 2

# -- the objects of PROTOCOL.md §3 ---------------------------------------------------------------

JOB_KEYS: Final = [
    "id", "queue", "data", "priority", "created_at", "run_at", "started_at", "attempts",
    "max_attempts", "backoff", "ttl", "timeout", "unique_key", "depends_on", "progress",
    "progress_msg", "tags", "lifo", "remove_on_complete", "remove_on_fail", "last_heartbeat",
    "stall_timeout", "stall_count", "parent_id", "children_ids", "children_completed",
    "custom_id", "keep_completed_age", "keep_completed_count", "completed_at", "group_id",
]  # fmt: skip
JOB_WITH_STATE_KEYS: Final = [*JOB_KEYS, "state"]
QUEUE_INFO_KEYS: Final = {
    "name", "pending", "processing", "completed", "delayed", "dlq", "paused", "rate_limit",
    "concurrency_limit",
}  # fmt: skip
CRON_KEYS: Final = {
    "name", "queue", "data", "schedule", "repeat_every", "priority", "next_run", "executions",
    "limit",
}  # fmt: skip
METRICS_KEYS: Final = {
    "total_pushed", "total_completed", "total_failed", "jobs_per_second", "avg_latency_ms",
    "queues",
}  # fmt: skip
QUEUE_METRICS_KEYS: Final = {"name", "pending", "processing", "dlq", "rate_limit"}
STATS_KEYS: Final = {"ok", "queued", "processing", "delayed", "dlq", "completed"}
STATS_QUEUE_KEYS: Final = {"waiting", "active", "completed", "failed", "delayed", "paused"}
COUNTS_KEYS: Final = {"waiting", "active", "delayed", "completed", "failed"}

_INT_KEYS: Final = (
    "id", "priority", "created_at", "run_at", "started_at", "attempts", "max_attempts",
    "backoff", "ttl", "timeout", "progress", "last_heartbeat", "stall_timeout", "stall_count",
    "children_completed", "keep_completed_age", "keep_completed_count", "completed_at",
)  # fmt: skip
_OPT_STR_KEYS: Final = ("unique_key", "progress_msg", "custom_id", "group_id")
_BOOL_KEYS: Final = ("lifo", "remove_on_complete", "remove_on_fail")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_job(job: Any, *, with_state: bool = False, **expect: Any) -> dict[str, Any]:
    """Assert `job` is a Job (§3.1: 31 keys in order, typed) or a JobWithState, with `expect`."""
    assert isinstance(job, dict), job
    assert list(job) == (JOB_WITH_STATE_KEYS if with_state else JOB_KEYS), list(job)
    for key in _INT_KEYS:
        assert is_int(job[key]), key
        assert job[key] >= (-(2**31) if key == "priority" else 0), key
    for key in _OPT_STR_KEYS:
        assert job[key] is None or isinstance(job[key], str), key
    for key in _BOOL_KEYS:
        assert isinstance(job[key], bool), key
    assert isinstance(job["queue"], str)
    assert 0 <= job["progress"] <= 100
    assert all(is_int(i) for i in job["depends_on"])
    assert all(is_int(i) for i in job["children_ids"])
    assert all(isinstance(t, str) for t in job["tags"])
    assert job["parent_id"] is None or is_int(job["parent_id"])
    if with_state:
        assert isinstance(job["state"], str)
    for key, value in expect.items():
        assert job[key] == value, (key, job[key], value)
    return job


def check_queue_info(info: Any, **expect: Any) -> None:
    assert isinstance(info, dict), info
    assert set(info) == QUEUE_INFO_KEYS, info
    for key in ("pending", "processing", "completed", "delayed", "dlq"):
        assert is_int(info[key]), key
    assert isinstance(info["paused"], bool)
    for key, value in expect.items():
        assert info[key] == value, (key, info[key], value)


# -- where things live ---------------------------------------------------------------------------


def process_of_queue(queue: str) -> int:
    return process_of_shard(shard_of_queue(queue), NPROCS)


def process_of_id(job_id: int) -> int:
    return process_of_shard(shard_of_id(job_id), NPROCS)


def queue_on(proc: int, prefix: str) -> str:
    """A queue name starting with `prefix` whose shard is owned by shard process `proc`."""
    for i in itertools.count():
        name = f"{prefix}-{i}"
        if process_of_queue(name) == proc:
            return name
    raise AssertionError("unreachable")


def now_ms() -> int:
    """The server's clock (same host, same clock source as shards/process.py `wall_ms`)."""
    return time.time_ns() // 1_000_000


# -- connections ---------------------------------------------------------------------------------


class Wire:
    """One raw JSON-lines connection. `request` sends one command with a fresh `reqId`, reads
    one reply, checks the echo and returns the reply without `reqId`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *objs: Mapping[str, Any]) -> None:
        self.sock.sendall(b"".join(orjson.dumps(o) + b"\n" for o in objs))

    def read(self, timeout_s: float = 10.0) -> dict[str, Any]:
        self.sock.settimeout(timeout_s)
        while b"\n" not in self.buf:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        reply = orjson.loads(line)
        assert isinstance(reply, dict), reply
        return reply

    def read_n(self, n: int) -> list[dict[str, Any]]:
        return [self.read() for _ in range(n)]

    def nothing_pending(self, wait_s: float = 0.2) -> bool:
        """True when no byte arrives within `wait_s` (no unsolicited or extra reply)."""
        if self.buf:
            return False
        self.sock.settimeout(wait_s)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return True
        self.buf += data
        return False

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        rid = f"r{next(self._ids)}"
        self.send({"cmd": cmd, "reqId": rid, **fields})
        reply = self.read()
        assert reply.get("reqId") == rid, reply
        assert next(iter(reply)) == "reqId"
        del reply["reqId"]
        assert isinstance(reply.get("ok"), bool), reply
        return reply

    def ok(self, cmd: str, **fields: Any) -> dict[str, Any]:
        reply = self.request(cmd, **fields)
        assert reply["ok"] is True, (cmd, reply)
        return reply

    def error(self, cmd: str, **fields: Any) -> str:
        """The error text of a failing command; asserts the exact failure shape (§4.2)."""
        reply = self.request(cmd, **fields)
        assert set(reply) == {"ok", "error"}, (cmd, reply)
        assert reply["ok"] is False, (cmd, reply)
        text = reply["error"]
        assert isinstance(text, str)
        return text

    # Shortcuts for the common setup steps.
    def push(self, queue: str, data: Any = None, **options: Any) -> int:
        job_id = self.ok("PUSH", queue=queue, data=data, **options)["id"]
        assert is_int(job_id)
        return int(job_id)

    def pull(self, queue: str, timeout: int = 1000) -> dict[str, Any]:
        job = self.ok("PULL", queue=queue, timeout=timeout)["job"]
        assert job is not None, f"nothing to pull from {queue}"
        return check_job(job)

    def state(self, job_id: int) -> str:
        state = self.ok("GETSTATE", id=job_id)["state"]
        assert isinstance(state, str)
        return state

    def job(self, job_id: int) -> dict[str, Any]:
        reply = self.ok("GETJOB", id=job_id)
        return check_job(reply["job"])


def msgpack_frame(obj: object) -> bytes:
    body = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


class MsgWire:
    """One raw MessagePack-frames connection (PROTOCOL.md §1.4)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self._ids = itertools.count(1)

    def send(self, obj: object) -> None:
        self.sock.sendall(msgpack_frame(obj))

    def read(self, timeout_s: float = 10.0) -> dict[str, Any]:
        self.sock.settimeout(timeout_s)
        while True:
            if len(self.buf) >= 4:
                (size,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + size:
                    body, self.buf = self.buf[4 : 4 + size], self.buf[4 + size :]
                    reply = msgpack.unpackb(body, raw=False)
                    assert isinstance(reply, dict), reply
                    return reply
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        rid = f"m{next(self._ids)}"
        self.send({"cmd": cmd, "reqId": rid, **fields})
        reply = self.read()
        assert reply.pop("reqId", None) == rid, reply
        return reply


def serve_module(
    tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any
) -> Iterator[ServerProcess]:
    """Body of a module-scoped fixture: one real server (2 shard processes) per module."""
    data_dir: Path = tmp_path_factory.mktemp(name)
    srv = ServerProcess(data_dir, shard_procs=NPROCS, **kwargs).start()
    try:
        yield srv
    finally:
        srv.stop()
    # A child that died mid-module (restarted with its memory lost) or a command that raised
    # inside the server would otherwise show up only as puzzling failures of later tests.
    log = srv.log()
    for sign in ("exited with status", "Traceback", "command failed"):
        assert sign not in log, f"server trouble ({sign!r}):\n{log[-8000:]}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_module(tmp_path_factory, "conformance")


# == §1: transport, envelope, parse errors ========================================================


def test_reqid_echoed_verbatim_and_absent_when_not_sent(wire: Wire) -> None:
    wire.send({"cmd": "PUSH", "queue": "env-q", "data": 1, "reqId": "ü 17/x"})
    reply = wire.read()
    assert list(reply) == ["reqId", "ok", "id"]
    assert reply["reqId"] == "ü 17/x"
    wire.send({"cmd": "PUSH", "queue": "env-q", "data": 2})
    reply = wire.read()
    assert set(reply) == {"ok", "id"}  # no reqId key at all


def test_parse_errors_have_invalid_prefix_and_echo_reqid(wire: Wire) -> None:
    """§1.5 parse errors; ★ §1.6 our server echoes the reqId (upstream drops it)."""
    cases: list[dict[str, Any]] = [
        {"cmd": "push", "queue": "q", "data": 1},  # command names are case-sensitive
        {"cmd": "NOPE"},
        {"cmd": "PUSH", "queue": "q"},  # missing required field
        {"cmd": "PUSH", "queue": "q", "data": 1, "priority": 1.5},  # float for i32
        {"cmd": "PUSH", "queue": "q", "data": 1, "priority": "5"},  # string for i32
        {"cmd": "PUSH", "queue": "q", "data": 1, "delay": -1},  # negative u64
        {"cmd": "PUSH", "queue": "q", "data": 1, "max_attempts": 2**32},  # u32 out of range
        {"cmd": "PUSH", "queue": 5, "data": 1},
        {"cmd": "PUSH", "queue": "q", "data": 1, "lifo": "yes"},
        {"cmd": "PULLB", "queue": "q"},  # count is required
        {"cmd": "ACK", "id": 1.0},
        {"cmd": "PROGRESS", "id": 1, "progress": 256},  # u8
    ]
    for i, case in enumerate(cases):
        wire.send({**case, "reqId": f"p{i}"})
        reply = wire.read()
        assert list(reply) == ["reqId", "ok", "error"], reply
        assert reply["reqId"] == f"p{i}"
        assert reply["ok"] is False
        assert reply["error"].startswith("Invalid: "), reply
    assert wire.request("push", queue="q", data=1)["error"] == "Invalid: unknown command: push"


def test_malformed_json_recovers_reqid(wire: Wire) -> None:
    """★ §1.6: the reqId of an undecodable line is recovered; the connection stays open."""
    wire.send_raw(b'{"cmd":"PUSH","reqId":"broken","queue": \n')
    reply = wire.read()
    assert reply["reqId"] == "broken"
    assert reply["ok"] is False
    assert reply["error"].startswith("Invalid: ")
    assert wire.ok("PING") == {"ok": True, "pong": True}


def test_invalid_utf8_line_answered(wire: Wire) -> None:
    """Ours (docs/internals.md): invalid UTF-8 gets a parse error, upstream closes silently."""
    wire.send_raw(b'{"cmd":"PING","reqId":"u8","x":"\xff"}\n')
    reply = wire.read()
    assert reply["reqId"] == "u8"
    assert reply["error"].startswith("Invalid: ")
    assert wire.ok("PING") == {"ok": True, "pong": True}


def test_numeric_reqid_is_a_parse_error_without_reqid(wire: Wire) -> None:
    wire.send({"cmd": "PING", "reqId": 17})
    reply = wire.read()
    assert set(reply) == {"ok", "error"}
    assert reply["error"].startswith("Invalid: ")


def test_non_object_line_is_a_parse_error(wire: Wire) -> None:
    wire.send_raw(b"[1,2]\n")
    reply = wire.read()
    assert set(reply) == {"ok", "error"}
    assert reply["error"].startswith("Invalid: ")


def test_blank_lines_ignored_and_crlf_accepted(wire: Wire) -> None:
    """★ §1.3: empty and whitespace-only lines get no reply; CRLF line ends work."""
    wire.send_raw(b'\n   \n\r\n{"cmd":"PING","reqId":"a"}\r\n\n{"cmd":"PING","reqId":"b"}\n')
    assert wire.read() == {"reqId": "a", "ok": True, "pong": True}
    assert wire.read() == {"reqId": "b", "ok": True, "pong": True}
    assert wire.nothing_pending()


def test_json_line_starting_with_space_is_text(wire: Wire) -> None:
    """Our choice (§1.2 ⚠ fixed): only a first byte 0x00/0x01 selects MessagePack, so a JSON
    request that starts with a space is read as JSON instead of a huge length prefix."""
    wire.send_raw(b' {"cmd":"PING","reqId":"sp"}\n')
    assert wire.read() == {"reqId": "sp", "ok": True, "pong": True}


def test_unknown_keys_ignored(wire: Wire) -> None:
    job_id = wire.push("env-unknown", {"a": 1}, _compressed=False, options={"x": 1}, bogus=3)
    assert wire.job(job_id)["data"] == {"a": 1}


def test_ping_alias(wire: Wire) -> None:
    """★ §2.14: PING -> {"ok":true,"pong":true}."""
    assert wire.ok("PING") == {"ok": True, "pong": True}


def test_auth_with_auth_disabled_accepts_any_token(wire: Wire) -> None:
    """§1.8: no tokens configured -> AUTH with any token is OK."""
    assert wire.ok("AUTH", token="whatever") == {"ok": True}
    assert wire.request("AUTH")["error"].startswith("Invalid: ")  # token is required


def test_pipelined_without_reqid_replies_in_request_order(wire: Wire) -> None:
    q0, q1 = queue_on(0, "order"), queue_on(1, "order")
    objs: list[dict[str, Any]] = []
    for i in range(30):
        objs.append({"cmd": "PUSH", "queue": (q0, q1)[i % 2], "data": i})
        objs.append({"cmd": "COUNT", "queue": (q0, q1)[i % 2]})
    wire.send(*objs)
    replies = wire.read_n(len(objs))
    for i in range(30):
        assert set(replies[2 * i]) == {"ok", "id"}
        # PUSH -> COUNT stays causal: the count includes the push just made.
        assert replies[2 * i + 1] == {"ok": True, "count": i // 2 + 1}


def test_pipelined_commands_apply_in_arrival_order(wire: Wire) -> None:
    """§1.7: non-blocking commands are applied in arrival order, so a pipelined write is seen
    by the read after it, and a read does not see the write after it (with or without reqId)."""
    for i in range(5):
        queue = queue_on(i % 2, "causal")
        job_id = wire.push(queue, i)
        wire.pull(queue)
        wire.send(
            {"cmd": "KVMSET", "entries": [{"key": f"causal-{i}", "value": i}], "reqId": "w1"},
            {"cmd": "KVGET", "key": f"causal-{i}", "reqId": "r1"},
            {"cmd": "ACKB", "ids": [job_id], "reqId": "w2"},
            {"cmd": "GETSTATE", "id": job_id, "reqId": "r2"},
            {"cmd": "STATS", "reqId": "r3"},
            {"cmd": "PUSH", "queue": f"causal-late-{i}", "data": 1, "reqId": "w3"},
        )
        replies = {r["reqId"]: r for r in wire.read_n(6)}
        assert replies["r1"]["value"] == i
        assert replies["r2"]["state"] == "completed"
        assert f"causal-late-{i}" not in replies["r3"]["queues"]


def test_blocked_pull_with_reqid_answered_out_of_order(wire: Wire) -> None:
    """★ §1.7: a blocking request with reqId is parked; later requests are answered first."""
    queue = queue_on(1, "park")
    wire.send(
        {"cmd": "PULL", "queue": queue, "timeout": 5000, "reqId": "pull"},
        {"cmd": "PUSH", "queue": queue, "data": "x", "reqId": "push"},
    )
    first, second = wire.read(), wire.read()
    assert first["reqId"] == "push"
    assert second["reqId"] == "pull"
    assert second["job"]["id"] == first["id"]


# == §1.4: MessagePack mode ======================================================================


@pytest.fixture
def mwire(srv: ServerProcess) -> Iterator[MsgWire]:
    sock = srv.connect()
    try:
        yield MsgWire(sock)
    finally:
        sock.close()


def test_msgpack_push_pull_ack_getjob(mwire: MsgWire) -> None:
    queue = queue_on(1, "mp")
    push = mwire.request("PUSH", queue=queue, data={"b": [1, 2.5, None]}, priority=None, lifo=None)
    assert set(push) == {"ok", "id"}
    assert push["ok"] is True
    pulled = mwire.request("PULL", queue=queue, timeout=1000)
    job = check_job(pulled["job"], id=push["id"], data={"b": [1, 2.5, None]}, priority=0)
    assert job["lifo"] is False
    assert mwire.request("ACK", id=push["id"], result=[1, "r"]) == {"ok": True}
    assert mwire.request("GETRESULT", id=push["id"]) == {
        "ok": True,
        "id": push["id"],
        "result": [1, "r"],
    }
    assert mwire.request("GETJOB", id=push["id"]) == {"ok": True, "job": None, "state": "completed"}


def test_msgpack_bin_values(mwire: MsgWire, wire: Wire) -> None:
    """⚠ relaxed (§1.4): `bin` is accepted in job data (kept as bytes for MessagePack
    readers, rendered as text for JSON readers); a KV value must have a JSON form."""
    queue = queue_on(0, "mp-bin")
    push = mwire.request("PUSH", queue=queue, data={"b": b"\x00ab"})
    assert mwire.request("GETJOB", id=push["id"])["job"]["data"] == {"b": b"\x00ab"}
    assert wire.job(push["id"])["data"] == {"b": "\x00ab"}
    reply = mwire.request("KVSET", key="mp-bin", value=b"\x01")
    assert reply["ok"] is False
    assert reply["error"].startswith("Invalid: value is not representable as JSON")


def test_msgpack_split_and_orchestrated_commands(mwire: MsgWire) -> None:
    """The acceptor's own replies (split, scattered, orchestrated) are MessagePack too."""
    q0, q1 = queue_on(0, "mp-x"), queue_on(1, "mp-x")
    flow = mwire.request("FLOW", queue=q0, data=1, children=[{"queue": q1, "data": 2}])
    assert list(flow) == ["ok", "parent_id", "children_ids"]
    (child,) = flow["children_ids"]
    children = mwire.request("GETCHILDREN", parent_id=flow["parent_id"])
    assert (children["children_ids"], children["total"]) == ([child], 1)
    batch = mwire.request("GETJOBSBATCH", ids=[child, flow["parent_id"]])
    assert [j["state"] for j in batch["jobs"]] == ["waiting", "waiting-children"]
    mset = mwire.request("KVMSET", entries=[{"key": f"mp-k{i}", "value": i} for i in range(6)])
    assert mset == {"ok": True, "count": 6}
    assert mwire.request("KVMGET", keys=["mp-k5", "mp-k0"]) == {"ok": True, "values": [5, 0]}
    assert mwire.request("FLOW", queue=q0, data=1, children=[]) == {
        "ok": False,
        "error": "Flow must have at least one child",
    }
    assert mwire.request("CRONDELETE", name="mp-none") == {
        "ok": False,
        "error": "Cron job not found",
    }


def test_msgpack_scattered_and_float_replies(mwire: MsgWire) -> None:
    stats = mwire.request("STATS")
    assert set(stats) >= STATS_KEYS
    metrics = mwire.request("METRICS")["metrics"]
    assert set(metrics) == METRICS_KEYS
    # floats travel as float64, never as ints (§1.4)
    assert isinstance(metrics["jobs_per_second"], float)
    assert isinstance(metrics["avg_latency_ms"], float)


def test_msgpack_parse_errors(mwire: MsgWire) -> None:
    """Binary mode parse errors say "MessagePack deserialize error: …"; the connection stays."""
    reply = mwire.request("PUSH", queue="q")  # missing data
    assert set(reply) == {"ok", "error"}
    assert reply["error"].startswith("MessagePack deserialize error: ")
    reply = mwire.request("STATSX")
    assert reply["error"] == "MessagePack deserialize error: unknown command: STATSX"
    mwire.sock.sendall(struct.pack(">I", 0))  # N = 0
    reply = mwire.read()
    assert set(reply) == {"ok", "error"}
    assert reply["error"].startswith("MessagePack deserialize error: ")
    mwire.sock.sendall(struct.pack(">I", 2) + b"\xc1\xc1")  # 0xc1 is never valid
    reply = mwire.read()
    assert reply["ok"] is False
    assert reply["error"].startswith("MessagePack deserialize error: ")
    assert mwire.request("PING") == {"ok": True, "pong": True}


def test_msgpack_frame_too_large_closes(mwire: MsgWire) -> None:
    mwire.sock.sendall(struct.pack(">I", 16 * 1024 * 1024 + 1))
    assert mwire.read() == {"ok": False, "error": "Message too large"}
    mwire.sock.settimeout(5)
    assert mwire.sock.recv(16) == b""  # closed


def test_msgpack_frame_of_exactly_16_mib_accepted(srv: ServerProcess) -> None:
    """The limit is inclusive (§1.4); the first byte of that length is 0x01."""
    with srv.connect() as sock:
        w = MsgWire(sock)
        base = len(msgpack.packb({"cmd": "PING", "reqId": "big", "pad": ""}))
        # A string that long has a 5-byte header (str32) where the empty one has 1 byte.
        pad = "x" * (16 * 1024 * 1024 - base - 4)
        body = msgpack.packb({"cmd": "PING", "reqId": "big", "pad": pad})
        assert len(body) == 16 * 1024 * 1024
        sock.sendall(struct.pack(">I", len(body)) + body)
        assert w.read(timeout_s=30) == {"reqId": "big", "ok": True, "pong": True}


# == §2.1-2.2: PUSH / PUSHB ======================================================================


def test_push_reply_and_id_carries_shard(wire: Wire) -> None:
    for proc in range(NPROCS):
        queue = queue_on(proc, "push")
        reply = wire.ok("PUSH", queue=queue, data={"to": "a@b.c"})
        assert set(reply) == {"ok", "id"}
        assert is_int(reply["id"])
        assert shard_of_id(reply["id"]) == shard_of_queue(queue)  # DESIGN: id = seq*32 + shard
        assert wire.ok("GETJOB", id=reply["id"])["state"] == "waiting"


def test_push_every_option_is_stored(wire: Wire) -> None:
    queue = queue_on(0, "push-all")
    reply = wire.request(
        "PUSH", queue=queue, data={"k": [1, {"n": None}]}, priority=-7, delay=3_600_000,
        ttl=86_400_000, timeout=120_000, max_attempts=4, backoff=250, unique_key="u-all",
        tags=["a", "b"], lifo=True, remove_on_complete=True, remove_on_fail=True,
        stall_timeout=45_000, debounce_id="deb-all", debounce_ttl=10, job_id="cid-all",
        keep_completed_age=5000, keep_completed_count=7, group_id="g1",
    )  # fmt: skip
    job_id = reply["id"]
    got = wire.ok("GETJOB", id=job_id)
    assert set(got) == {"ok", "job", "state"}
    assert got["state"] == "delayed"
    job = check_job(
        got["job"], id=job_id, queue=queue, data={"k": [1, {"n": None}]}, priority=-7,
        started_at=0, attempts=0, max_attempts=4, backoff=250, ttl=86_400_000,
        timeout=120_000, unique_key="u-all", depends_on=[], progress=0, progress_msg=None,
        tags=["a", "b"], lifo=True, remove_on_complete=True, remove_on_fail=True,
        last_heartbeat=0, stall_timeout=45_000, stall_count=0, parent_id=None,
        children_ids=[], children_completed=0, custom_id="cid-all", keep_completed_age=5000,
        keep_completed_count=7, completed_at=0, group_id="g1",
    )  # fmt: skip
    assert job["run_at"] == job["created_at"] + 3_600_000
    assert abs(job["created_at"] - now_ms()) < 60_000


def test_push_defaults(wire: Wire) -> None:
    queue = queue_on(1, "push-def")
    job = wire.job(wire.push(queue, None))
    check_job(
        job, data=None, priority=0, max_attempts=0, backoff=0, ttl=0, timeout=0,
        unique_key=None, tags=[], lifo=False, remove_on_complete=False, remove_on_fail=False,
        stall_timeout=0, custom_id=None, keep_completed_age=0, keep_completed_count=0,
        group_id=None,
    )  # fmt: skip
    assert job["run_at"] == job["created_at"]


def test_push_null_means_absent(wire: Wire) -> None:
    """★ §1.4: null for defaulted non-optional fields is accepted as "absent"."""
    queue = queue_on(0, "push-null")
    job_id = wire.push(
        queue, 1, priority=None, lifo=None, remove_on_complete=None, remove_on_fail=None,
        delay=None, max_attempts=None, depends_on=None, tags=None,
    )  # fmt: skip
    check_job(wire.job(job_id), priority=0, lifo=False, remove_on_complete=False, tags=[])


def test_push_camelcase_aliases(wire: Wire) -> None:
    """★ §6.3/§6.5: jobId, keepCompletedAge, keepCompletedCount (what Python/Go send)."""
    queue = queue_on(1, "push-camel")
    job_id = wire.push(queue, 1, jobId="camel-1", keepCompletedAge=99, keepCompletedCount=3)
    check_job(wire.job(job_id), custom_id="camel-1", keep_completed_age=99, keep_completed_count=3)
    assert wire.push(queue, 2, jobId="camel-1") == job_id  # the alias deduplicates too


def test_push_queue_name_errors(wire: Wire) -> None:
    assert wire.error("PUSH", queue="", data=1) == "Queue name cannot be empty"
    assert wire.error("PUSH", queue="x" * 257, data=1) == "Queue name too long (max 256 chars)"
    bad = "Queue name must contain only alphanumeric characters, underscores, hyphens, or dots"
    for name in ("a b", "a:b", "a/b", "q!"):
        assert wire.error("PUSH", queue=name, data=1) == bad
    wire.push("x" * 256, 1)
    wire.push("Очередь_ü.1-2", 1)  # char::is_alphanumeric accepts Unicode letters (§4.1 ⚠)


def test_push_data_too_large(wire: Wire) -> None:
    """§4.1: strings count their UTF-8 length + 2, so 10 485 759 chars is one byte over."""
    text = wire.error("PUSH", queue="big-data", data="x" * 10_485_759)
    assert text == "Job data too large (~10485761 bytes, max 10485760 bytes)"


def test_push_debounce(wire: Wire) -> None:
    queue = queue_on(0, "debounce")
    wire.push(queue, 1, debounce_id="d1", debounce_ttl=600_000)
    assert wire.error("PUSH", queue=queue, data=2, debounce_id="d1") == (
        "Debounced: job with id 'd1' was pushed recently"
    )
    wire.push(queue_on(1, "debounce"), 3, debounce_id="d1")  # per queue
    wire.push(queue, 4, debounce_id="d2")


def test_push_unique_key(wire: Wire) -> None:
    queue = queue_on(1, "unique")
    job_id = wire.push(queue, 1, unique_key="k1")
    assert wire.error("PUSH", queue=queue, data=2, unique_key="k1") == "Duplicate job with key: k1"
    wire.push(queue_on(0, "unique"), 3, unique_key="k1")  # per queue
    wire.pull(queue)
    assert wire.error("PUSH", queue=queue, data=2, unique_key="k1") == "Duplicate job with key: k1"
    wire.ok("ACK", id=job_id)
    wire.push(queue, 4, unique_key="k1")  # released by ACK


def test_push_custom_id_dedup(wire: Wire) -> None:
    """§2.1 step 4. Our choice (DESIGN.md): custom ids are unique per queue, not global."""
    queue = queue_on(0, "custom")
    first = wire.push(queue, 1, job_id="order-1")
    assert wire.push(queue, 2, job_id="order-1") == first
    assert wire.job(first)["data"] == 1  # nothing created or changed
    other = wire.push(queue_on(1, "custom"), 3, job_id="order-1")
    assert other != first  # upstream: the same id (one global namespace)
    assert wire.pull(queue)["id"] == first
    assert wire.push(queue, 4, job_id="order-1") == first  # still live while active
    wire.ok("ACK", id=first)
    second = wire.push(queue, 5, job_id="order-1")  # completed: a new job replaces the mapping
    assert second != first
    assert wire.job(second)["custom_id"] == "order-1"


def test_pushb(wire: Wire) -> None:
    queue = queue_on(1, "pushb")
    reply = wire.ok("PUSHB", queue=queue, jobs=[{"data": 1}, {}, {"data": {"x": 2}, "priority": 3}])
    assert set(reply) == {"ok", "ids"}
    assert len(reply["ids"]) == 3
    ids = reply["ids"]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert [wire.job(i)["data"] for i in ids] == [1, None, {"x": 2}]  # data optional in PUSHB
    assert wire.job(ids[2])["priority"] == 3


def test_pushb_skips_and_dedups(wire: Wire) -> None:
    """§2.2: never ok:false; skipped jobs have no id (not index-aligned); repeated job_id ->
    the existing id in its place."""
    queue = queue_on(0, "pushb-skip")
    held = wire.push(queue, 0, unique_key="taken")
    reply = wire.ok(
        "PUSHB",
        queue=queue,
        jobs=[
            {"data": "a", "unique_key": "taken"},  # skipped: key held by `held`
            {"data": "b", "unique_key": "fresh"},
            {"data": "c", "unique_key": "fresh"},  # skipped: taken earlier in the batch
            {"data": "d", "job_id": "cj"},
            {"data": "e", "jobId": "cj"},  # repeats an earlier job_id: same id again
            {"data": "f", "debounce_id": "db"},
            {"data": "g", "debounce_id": "db"},  # skipped: debounced
        ],
    )
    ids = reply["ids"]
    assert len(ids) == 4
    assert held not in ids
    assert ids[2] == ids[1]
    assert [wire.job(i)["data"] for i in ids] == ["b", "d", "d", "f"]


def test_pushb_rejections_answer_empty_ids(wire: Wire) -> None:
    assert wire.ok("PUSHB", queue="bad name", jobs=[{"data": 1}]) == {"ok": True, "ids": []}
    reply = wire.ok(
        "PUSHB", queue=queue_on(0, "pushb-big"), jobs=[{"data": i} for i in range(1001)]
    )
    assert reply == {"ok": True, "ids": []}
    assert wire.ok("COUNT", queue=queue_on(0, "pushb-big"))["count"] == 0
    reply = wire.ok("PUSHB", queue=queue_on(1, "pushb-1000"), jobs=[{} for _ in range(1000)])
    assert len(reply["ids"]) == 1000


# == §2.3: PULL / PULLB ==========================================================================


def test_pull_delivers_and_activates(wire: Wire) -> None:
    queue = queue_on(1, "pull")
    job_id = wire.push(queue, {"p": 1})
    before = now_ms()
    reply = wire.ok("PULL", queue=queue, timeout=1000)
    assert set(reply) == {"ok", "job"}
    job = check_job(reply["job"], id=job_id, data={"p": 1}, attempts=0)
    assert job["started_at"] == job["last_heartbeat"] >= before
    assert wire.state(job_id) == "active"


def test_pull_timeout_returns_null(wire: Wire) -> None:
    assert wire.ok("PULL", queue=queue_on(0, "pull-empty"), timeout=50) == {"ok": True, "job": None}
    assert wire.ok("PULL", queue="never-used-queue", timeout=0) == {"ok": True, "job": None}


def test_pull_order_priority_then_fifo_and_lifo(wire: Wire) -> None:
    queue = queue_on(0, "pull-order")
    low = wire.push(queue, "low", priority=1)
    first = wire.push(queue, "first", priority=5)
    second = wire.push(queue, "second", priority=5)
    assert [wire.pull(queue)["id"] for _ in range(3)] == [first, second, low]
    # lifo breaks ties of equal priority *and* run_at: one PUSHB shares one `now`.
    lifo_q = queue_on(1, "pull-lifo")
    a, b = wire.ok("PUSHB", queue=lifo_q, jobs=[{"data": "a", "lifo": True}] * 2)["ids"]
    assert [wire.pull(lifo_q)["id"] for _ in range(2)] == [b, a]


def test_pull_ttl_expired_job_dropped(wire: Wire) -> None:
    queue = queue_on(1, "pull-ttl")
    expired = wire.push(queue, "old", ttl=1)
    ok_job = wire.push(queue, "ok")
    time.sleep(0.01)  # the TTL is measured on the server's wall clock
    assert wire.pull(queue)["id"] == ok_job
    assert wire.state(expired) == "unknown"


def test_pull_group_one_active_per_group(wire: Wire) -> None:
    queue = queue_on(0, "pull-group")
    g1a = wire.push(queue, 1, group_id="g")
    wire.push(queue, 2, group_id="g")
    other = wire.push(queue, 3, group_id="h")
    reply = wire.ok("PULLB", queue=queue, count=10, timeout=0)
    assert [j["id"] for j in reply["jobs"]] == [g1a, other]  # one per group
    assert wire.ok("PULL", queue=queue, timeout=0)["job"] is None  # group g busy
    wire.ok("ACK", id=g1a)
    assert wire.pull(queue)["data"] == 2


def test_pullb(wire: Wire) -> None:
    queue = queue_on(1, "pullb")
    ids = wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(5)])["ids"]
    reply = wire.ok("PULLB", queue=queue, count=3, timeout=1000)
    assert set(reply) == {"ok", "jobs"}
    assert [check_job(j)["id"] for j in reply["jobs"]] == ids[:3]
    reply = wire.ok("PULLB", queue=queue, count=10, timeout=1000)  # fewer available: at once
    assert [j["id"] for j in reply["jobs"]] == ids[3:]
    assert wire.ok("PULLB", queue=queue, count=10, timeout=50) == {"ok": True, "jobs": []}
    wire.push(queue, "late")
    assert wire.ok("PULLB", queue=queue, count=0, timeout=50) == {"ok": True, "jobs": []}


def test_pullb_compact_leaves_out_default_keys(wire: Wire) -> None:
    """★ `compact`: each job is the full Job minus the keys at their default value; a client
    filling those in gets exactly what GETJOB reports."""
    queue = queue_on(0, "pullb-compact")
    plain = wire.push(queue, {"n": 1})
    rich = wire.push(
        queue, [2], priority=-1, max_attempts=3, backoff=10, tags=["a"], job_id=f"c-{queue}"
    )
    jobs = wire.ok("PULLB", queue=queue, count=5, timeout=1000, compact=True)["jobs"]
    assert [j["id"] for j in jobs] == [plain, rich]
    for job in jobs:
        full = check_job(wire.ok("GETJOB", id=job["id"])["job"])  # as pulled: active
        # every key's default is 0, null, false or []
        assert job == {
            k: v for k, v in full.items() if k in ("id", "queue", "data") or v not in (0, None, [])
        }
    assert set(jobs[0]) == {"id", "queue", "data", "created_at", "run_at", "started_at",
                            "last_heartbeat"}  # fmt: skip
    assert {"priority", "max_attempts", "backoff", "tags", "custom_id"} <= set(jobs[1])
    assert wire.error("PULLB", queue=queue, count=1, timeout=0, compact="yes") == (
        'Invalid: invalid type: string "yes", expected a boolean (field `compact`)'
    )


# == §2.4: ACK / ACKB / FAIL =====================================================================


def test_ack(wire: Wire) -> None:
    queue = queue_on(0, "ack")
    job_id = wire.push(queue, 1)
    assert wire.error("ACK", id=job_id) == f"Job {job_id} not found"  # waiting, not active
    wire.pull(queue)
    assert wire.ok("ACK", id=job_id, result={"done": True}) == {"ok": True}
    assert wire.state(job_id) == "completed"
    assert wire.ok("GETRESULT", id=job_id) == {"ok": True, "id": job_id, "result": {"done": True}}
    assert wire.error("ACK", id=job_id) == f"Job {job_id} not found"
    assert wire.error("ACK", id=999_999_999) == "Job 999999999 not found"


def test_ack_remove_on_complete_forgets(wire: Wire) -> None:
    queue = queue_on(1, "ack-roc")
    job_id = wire.push(queue, 1, remove_on_complete=True)
    wire.pull(queue)
    wire.ok("ACK", id=job_id, result=5)
    assert wire.state(job_id) == "unknown"
    assert wire.ok("GETRESULT", id=job_id)["result"] is None


def test_ackb_across_shard_processes(wire: Wire) -> None:
    """ACKB with ids of both processes; ★ `count` next to upstream's packed `ids:[n]`."""
    q0, q1 = queue_on(0, "ackb"), queue_on(1, "ackb")
    ids = [wire.push(q0, 1), wire.push(q1, 2), wire.push(q0, 3), wire.push(q1, 4)]
    assert {process_of_id(i) for i in ids} == {0, 1}
    for q in (q0, q0, q1, q1):
        wire.pull(q)
    waiting = wire.push(q1, "not active")
    reply = wire.ok("ACKB", ids=[ids[3], 999_999_999, ids[0], waiting, ids[1], ids[2]])
    assert reply == {"ok": True, "ids": [4], "count": 4}
    assert [wire.state(i) for i in ids] == ["completed"] * 4
    assert wire.state(waiting) == "waiting"
    assert wire.ok("ACKB", ids=[]) == {"ok": True, "ids": [0], "count": 0}
    assert wire.ok("ACKB", ids=ids) == {"ok": True, "ids": [0], "count": 0}


def test_ackb_and_getjobsbatch_within_one_shard_process(wire: Wire) -> None:
    """A worker's batch (one queue, so one process) is answered by that process whole: the
    same replies as the scattered path, shards of the process split inside it."""
    qa = queue_on(1, "one-a")
    qb = next(
        q
        for q in (f"one-b-{i}" for i in itertools.count())
        if process_of_queue(q) == 1 and shard_of_queue(q) != shard_of_queue(qa)
    )
    ids = [wire.push(qa, 1), wire.push(qb, 2), wire.push(qa, 3)]
    assert {process_of_id(i) for i in ids} == {1}
    assert len({i % 32 for i in ids}) == 2  # two shards of that process
    batch = wire.ok("GETJOBSBATCH", ids=[ids[2], 999_999_998, ids[0]])["jobs"]
    assert [(j["id"], j["state"]) for j in batch] == [(ids[2], "waiting"), (ids[0], "waiting")]
    for q in (qa, qb, qa):
        wire.pull(q)
    assert wire.ok("ACKB", ids=[*ids, ids[0]]) == {"ok": True, "ids": [3], "count": 3}
    assert [wire.state(i) for i in ids] == ["completed"] * 3
    assert wire.error("ACKB", ids=[ids[0], -1]).startswith("Invalid")


def test_fail_retry_keeps_place(wire: Wire) -> None:
    queue = queue_on(0, "fail")
    job_id = wire.push(queue, 1)
    assert wire.error("FAIL", id=job_id) == f"Job {job_id} not found"  # not active
    run_at = wire.pull(queue)["run_at"]
    assert wire.ok("FAIL", id=job_id, error="boom") == {"ok": True}
    job = wire.job(job_id)
    check_job(job, attempts=1, progress_msg="boom", started_at=0, run_at=run_at)
    assert wire.state(job_id) == "waiting"
    wire.pull(queue)
    wire.ok("FAIL", id=job_id, error=None)  # error may be null
    assert wire.job(job_id)["attempts"] == 2


def test_fail_backoff_delays_retry(wire: Wire) -> None:
    queue = queue_on(1, "fail-backoff")
    job_id = wire.push(queue, 1, backoff=600_000)
    wire.pull(queue)
    before = now_ms()
    wire.ok("FAIL", id=job_id)
    after = now_ms()
    job = wire.job(job_id)
    # after the first failure: backoff * 2**1 (§3.4)
    assert before + 1_200_000 <= job["run_at"] <= after + 1_200_000
    assert wire.state(job_id) == "delayed"


def test_fail_final_goes_to_dlq_or_is_dropped(wire: Wire) -> None:
    queue = queue_on(0, "fail-final")
    job_id = wire.push(queue, 1, max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=job_id, error="fatal")
    assert wire.state(job_id) == "failed"
    got = wire.ok("GETJOB", id=job_id)
    check_job(got["job"], attempts=1)
    assert got["state"] == "failed"
    dropped = wire.push(queue, 2, max_attempts=1, remove_on_fail=True)
    wire.pull(queue)
    wire.ok("FAIL", id=dropped)
    assert wire.state(dropped) == "unknown"
    assert [j["id"] for j in wire.ok("DLQ", queue=queue)["jobs"]] == [job_id]


def test_unique_key_released_on_dlq(wire: Wire) -> None:
    """§6.6 fix: upstream keeps the unique key of a dead-lettered job held."""
    queue = queue_on(1, "uniq-dlq")
    job_id = wire.push(queue, 1, unique_key="uk", max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=job_id)
    wire.push(queue, 2, unique_key="uk")


def test_final_failure_error_kept_on_dlq_job(wire: Wire) -> None:
    """⚠ fixed (§2.8): upstream drops the final failure's error text; ours keeps it in
    `progress_msg` of the dead-lettered job, as a retry does."""
    queue = queue_on(1, "fail-text")
    job_id = wire.push(queue, 1, max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=job_id, error="last words")
    check_job(wire.ok("DLQ", queue=queue)["jobs"][0], id=job_id, progress_msg="last words")


def test_custom_id_of_dlq_job_still_maps(wire: Wire) -> None:
    queue = queue_on(0, "custom-dlq")
    job_id = wire.push(queue, 1, job_id="dead-cid", max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=job_id)
    assert wire.push(queue, 2, job_id="dead-cid") == job_id  # a stored Job object: same id


def test_delayed_high_priority_does_not_hide_ready_jobs(wire: Wire) -> None:
    """§6.6 fix: upstream's ready check only looks at the top of the priority order."""
    queue = queue_on(1, "hidden")
    wire.push(queue, "later", priority=100, delay=3_600_000)
    ready = wire.push(queue, "now", priority=1)
    assert wire.pull(queue, timeout=0)["id"] == ready


def test_group_released_on_cancel(wire: Wire) -> None:
    """§6.6 fix: upstream keeps a group blocked after CANCEL/DISCARD/MOVETODELAYED of its
    active job."""
    queue = queue_on(0, "group-free")
    first = wire.push(queue, 1, group_id="g")
    second = wire.push(queue, 2, group_id="g")
    third = wire.push(queue, 3, group_id="g")
    wire.pull(queue)
    wire.ok("CANCEL", id=first)
    assert wire.pull(queue, timeout=0)["id"] == second
    wire.ok("DISCARD", id=second)
    assert wire.pull(queue, timeout=0)["id"] == third


def test_pull_of_closed_connection_is_cancelled_or_requeued(srv: ServerProcess, wire: Wire) -> None:
    """★ §1.9: a blocked PULL dies with its connection; a job handed to a connection that is
    gone goes back to waiting. Either way the next puller gets the job."""
    queue = queue_on(1, "deadconn")
    with srv.connect() as gone:
        gone.sendall(orjson.dumps({"cmd": "PULL", "queue": queue, "timeout": 30_000}) + b"\n")
    job_id = wire.push(queue, "for a live worker")
    assert wire.ok("PULL", queue=queue, timeout=5000)["job"]["id"] == job_id


def test_json_line_over_16_mib_closes(srv: ServerProcess) -> None:
    """★ §1.3: text lines are capped at 16 MiB: "Message too large", then the close."""
    with srv.connect() as sock:
        w = Wire(sock)
        w.send_raw(b"{" + b" " * (16 * 1024 * 1024))  # one byte over, no newline yet
        assert w.read(timeout_s=30) == {"ok": False, "error": "Message too large"}
        sock.settimeout(10)
        assert sock.recv(16) == b""


# == the command set itself ======================================================================

PROTOCOL_COMMANDS: Final = frozenset(
    {
        # core, query, job management
        "PUSH", "PUSHB", "PULL", "PULLB", "ACK", "ACKB", "FAIL",
        "GETJOB", "GETSTATE", "GETRESULT", "GETJOBBYCUSTOMID", "GETJOBSBATCH", "GETJOBS",
        "GETJOBCOUNTS", "COUNT", "WAITJOB",
        "CANCEL", "PROGRESS", "GETPROGRESS", "UPDATEJOB", "CHANGEPRIORITY", "MOVETODELAYED",
        "PROMOTE", "DISCARD", "HEARTBEAT", "LOG", "GETLOGS", "PARTIAL",
        # queue control, DLQ, cron, flows, monitoring, pub/sub, auth
        "PAUSE", "RESUME", "ISPAUSED", "DRAIN", "OBLITERATE", "CLEAN", "LISTQUEUES",
        "RATELIMIT", "RATELIMITCLEAR", "SETCONCURRENCY", "CLEARCONCURRENCY",
        "DLQ", "RETRYDLQ", "PURGEDLQ", "CRON", "CRONDELETE", "CRONLIST", "FLOW", "GETCHILDREN",
        "STATS", "METRICS", "SUBSCRIBE", "UNSUBSCRIBE", "AUTH",
        # key/value
        "KVSET", "KVGET", "KVDEL", "KVMGET", "KVMSET", "KVEXISTS", "KVEXPIRE", "KVTTL",
        "KVKEYS", "KVINCR",
    }
)  # fmt: skip


def test_command_set_matches_protocol_and_reference() -> None:
    """The server knows exactly the 62 commands of §2 plus PING and the UPDATE alias, and
    docs/commands.md has one table row for each of them."""
    from flashq.protocol.commands import ALIASES, COMMANDS

    assert len(PROTOCOL_COMMANDS) == 62
    assert set(COMMANDS) == PROTOCOL_COMMANDS | {"PING"}
    assert dict(ALIASES) == {"UPDATE": "UPDATEJOB"}
    reference = Path(__file__).parents[2] / "docs" / "commands.md"
    rows = [
        line.split("|")[1].strip()
        for line in reference.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| command")
    ]
    documented = {row.split(" ")[0] for row in rows if row.split(" ")[0].isupper()}
    assert documented >= PROTOCOL_COMMANDS | {"PING"}
    assert "UPDATEJOB (★ alias UPDATE)" in rows
