"""Stress: correctness under concurrency and volume, through one real durable server.

Each test asserts what must be true (counts, identity, limits), never how fast it was.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from flashq.errors import ConflictError
from tests.harness import ServerProcess, read_replies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("stress")
    server = ServerProcess(data, shard_procs=2, storage="embedded").start()
    yield server
    server.stop()


def in_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = fn(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def drain(srv: ServerProcess, queue: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    with srv.client() as c:
        while True:
            got = c.call("PULLB", queue=queue, count=1000, timeout=300)["jobs"]
            if not got:
                return jobs
            jobs.extend(got)
            c.call("ACKB", ids=[j["id"] for j in got])


def test_ten_connections_push_concurrently(srv: ServerProcess) -> None:
    def push(i: int) -> list[int]:
        with srv.client() as c:
            return [c.call("PUSH", queue="conc", data={"c": i, "n": n})["id"] for n in range(200)]

    ids = [i for part in in_threads(10, push) for i in part]
    assert len(set(ids)) == 2000
    assert sorted(j["id"] for j in drain(srv, "conc")) == sorted(ids)


def test_ten_thousand_batch_push_then_pull_and_ack(srv: ServerProcess) -> None:
    with srv.client() as c:
        ids = []
        for chunk in range(10):
            jobs = [{"data": {"i": chunk * 1000 + k}} for k in range(1000)]
            ids += c.call("PUSHB", queue="tenk", jobs=jobs)["ids"]
    assert len(set(ids)) == 10_000
    jobs = drain(srv, "tenk")
    assert sorted(j["data"]["i"] for j in jobs) == list(range(10_000))
    with srv.client() as c:
        counts = c.call("GETJOBCOUNTS", queue="tenk")
        assert (counts["waiting"], counts["active"]) == (0, 0)


def test_large_payloads_come_back_byte_identical(srv: ServerProcess) -> None:
    blob = os.urandom(375_000).hex()[:500_000]  # 500 KB of text
    payload = {"blob": blob, "nested": [{"k": blob[:1000]}] * 3, "unicode": "żółw 🐢"}
    with srv.client() as c:
        job_id = c.call("PUSH", queue="big", data=payload)["id"]
        job = c.call("PULL", queue="big", timeout=2000)["job"]
        assert job["id"] == job_id
        assert orjson.dumps(job["data"]) == orjson.dumps(payload)
        c.call("ACK", id=job_id, result=payload)
        assert c.call("GETRESULT", id=job_id)["result"] == payload


def test_fifty_queues_all_drained(srv: ServerProcess) -> None:
    queues = [f"many-{i}" for i in range(50)]
    with srv.client() as c:
        for q in queues:
            c.call("PUSHB", queue=q, jobs=[{"data": n} for n in range(20)])
    for q in queues:
        assert len(drain(srv, q)) == 20
    with srv.client() as c:
        assert all(c.call("COUNT", queue=q)["count"] == 0 for q in queues)


def test_rate_limit_enforced(srv: ServerProcess) -> None:
    with srv.client() as c:
        c.call("PUSHB", queue="rated", jobs=[{"data": n} for n in range(200)])
        c.call("RATELIMIT", queue="rated", limit=20)
        got = 0
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            # PULLB too: the ★ fix applies the limit to batch pulls as well.
            jobs = c.call("PULLB", queue="rated", count=50, timeout=100)["jobs"]
            got += len(jobs)
        elapsed = time.monotonic() - start
        c.call("RATELIMITCLEAR", queue="rated")
    # Bucket capacity 20 plus refill 20/s over the elapsed time (plus one tick of slack).
    assert 0 < got <= 20 + 20 * elapsed + 5
    drain(srv, "rated")


def test_concurrency_limit_never_exceeded(srv: ServerProcess) -> None:
    with srv.client() as c:
        c.call("PUSHB", queue="limited", jobs=[{"data": n} for n in range(120)])
        c.call("SETCONCURRENCY", queue="limited", limit=3)
    lock = threading.Lock()
    active = 0
    peak = 0
    done = 0

    def work(_: int) -> None:
        nonlocal active, peak, done
        with srv.client() as c:
            while True:
                job = c.call("PULL", queue="limited", timeout=500)["job"]
                if job is None:
                    with lock:
                        if done >= 120:
                            return
                    continue
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.005)
                with lock:
                    active -= 1  # before the ACK: our count never exceeds the server's
                    done += 1
                c.call("ACK", id=job["id"])

    in_threads(10, work)
    assert done == 120
    assert 1 <= peak <= 3


def test_dlq_flood_then_retry_all(srv: ServerProcess) -> None:
    with srv.client() as c:
        ids = c.call(
            "PUSHB", queue="flood", jobs=[{"data": n, "max_attempts": 1} for n in range(100)]
        )["ids"]
        jobs = c.call("PULLB", queue="flood", count=100, timeout=1000)["jobs"]
        assert len(jobs) == 100
        for j in jobs:
            c.call("FAIL", id=j["id"], error="boom")
        assert c.call("GETJOBCOUNTS", queue="flood")["failed"] == 100
        assert c.call("RETRYDLQ", queue="flood")["count"] == 100
        assert c.call("GETJOBCOUNTS", queue="flood")["failed"] == 0
    assert sorted(j["id"] for j in drain(srv, "flood")) == sorted(ids)


def test_hundred_concurrent_cancels(srv: ServerProcess) -> None:
    with srv.client() as c:
        ids = c.call("PUSHB", queue="cancel", jobs=[{"data": n} for n in range(100)])["ids"]

    def cancel(i: int) -> bool:
        with srv.client() as c:
            return bool(c.call("CANCEL", id=ids[i])["ok"])

    assert all(in_threads(100, cancel))
    with srv.client() as c:
        assert c.call("COUNT", queue="cancel")["count"] == 0
        assert {c.call("GETSTATE", id=i)["state"] for i in ids} == {"unknown"}


ATTACKS: list[bytes] = [
    b"{" * 100_000 + b"\n",  # deep nesting
    b'{"cmd":"PUSH","queue":"q","data":' + b"[" * 5000 + b"]" * 5000 + b"}\n",
    b'{"cmd":"PUSH","queue":"q","data":1,"priority":99999999999999999999999}\n',
    b'{"cmd":"PUSH","queue":"q\\u0000x","data":1}\n',
    b'{"cmd":"PUSHB","queue":"q","jobs":"not a list"}\n',
    b'{"cmd":"PULLB","queue":"q","count":-5}\n',
    b'{"cmd":"ACKB","ids":[1,"two",3]}\n',
    b'{"cmd":"_TICK","kind":"cleanup"}\n',  # internal commands are not for clients
    b'{"cmd":"GETJOB","id":1.5}\n',
    b"\xff\xfe\xfd garbage\n",
    b'{"cmd":"PUSH","queue":"../../etc","data":1}\n',
    b'["cmd","PUSH"]\n',
]


@pytest.mark.parametrize("attack", ATTACKS, ids=range(len(ATTACKS)))
def test_invalid_input_rejected(srv: ServerProcess, attack: bytes) -> None:
    with srv.connect() as s:
        s.sendall(attack + b'{"cmd":"PING"}\n')
        replies = list(read_replies(s, 2, timeout_s=20))
    assert replies[0]["ok"] is False, replies[0]
    assert replies[1] == {"ok": True, "pong": True}
    with srv.client() as c:
        assert c.call("COUNT", queue="q")["count"] == 0


def test_connect_disconnect_cycles(srv: ServerProcess) -> None:
    for i in range(50):
        with srv.connect() as s:
            if i % 2:
                s.sendall(b'{"cmd":"PULL","queue":"cycle","timeout":5000}\n')
            else:
                s.sendall(b'{"cmd":"PUSH","queue":"cyc')  # half a request, then gone
        # Abrupt close: the pending PULL must be cancelled, not hold a future job.
    with srv.client() as c:
        job_id = c.call("PUSH", queue="cycle", data=1)["id"]
        job = c.call("PULL", queue="cycle", timeout=2000)["job"]
        assert job["id"] == job_id
        c.call("ACK", id=job_id)


def test_fifty_concurrent_pushes_one_unique_key(srv: ServerProcess) -> None:
    def push(i: int) -> int | None:
        with srv.client() as c:
            try:
                return int(c.call("PUSH", queue="uniq", data=i, unique_key="the-one")["id"])
            except ConflictError:
                return None

    ids = [i for i in in_threads(50, push) if i is not None]
    assert len(ids) == 1
    with srv.client() as c:
        assert c.call("COUNT", queue="uniq")["count"] == 1


def test_sustained_mixed_load_has_no_errors(srv: ServerProcess) -> None:
    duration = float(os.environ.get("FLASHQ_STRESS_SECONDS", "30"))
    stop = time.monotonic() + duration
    counts = {"pushed": 0, "acked": 0}
    lock = threading.Lock()

    def producer(i: int) -> None:
        with srv.client() as c:
            n = 0
            while time.monotonic() < stop:
                if n % 10 == 0:
                    c.call("PUSHB", queue=f"mix-{i}", jobs=[{"data": k} for k in range(100)])
                    added = 100
                else:
                    c.call("PUSH", queue=f"mix-{i}", data=n, priority=n % 5)
                    added = 1
                c.call("GETJOBCOUNTS", queue=f"mix-{i}")
                n += 1
                with lock:
                    counts["pushed"] += added

    def consumer(i: int) -> None:
        with srv.client() as c:
            while time.monotonic() < stop + 3:
                jobs = c.call("PULLB", queue=f"mix-{i % 3}", count=100, timeout=100)["jobs"]
                for j in jobs[:5]:
                    c.call("PROGRESS", id=j["id"], progress=50)
                if jobs:
                    c.call("ACKB", ids=[j["id"] for j in jobs])
                    with lock:
                        counts["acked"] += len(jobs)

    in_threads(6, lambda i: producer(i) if i < 3 else consumer(i - 3))
    remaining = sum(len(drain(srv, f"mix-{i}")) for i in range(3))
    assert counts["acked"] + remaining == counts["pushed"]


def test_raw_socket_abuse_does_not_hurt_neighbours(srv: ServerProcess) -> None:
    # A client that sends a never-ending line is cut off; others keep working.
    with srv.connect() as s, srv.client() as neighbour:
        s.sendall(b'{"cmd":"PUSH","queue":"x","data":"' + b"a" * (1 << 20))
        assert neighbour.call("PING")["pong"] is True
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
