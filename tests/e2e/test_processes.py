"""The process tree: titles, restarts after SIGKILL, graceful shutdown, auth, Unix socket."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson
import pytest

from flashq.errors import AuthenticationError, UnavailableError
from flashq.protocol.routing import shard_of_queue
from tests.harness import ServerProcess, read_replies


def queue_on_process(index: int, nprocs: int = 2) -> str:
    return next(f"q{i}" for i in range(1000) if shard_of_queue(f"q{i}") % nprocs == index)


def test_process_titles(server: ServerProcess) -> None:
    kids = server.wait_children(4)
    assert set(kids) == {"shard 1/2", "shard 2/2", "coordinator", "acceptor"}


def test_sigkill_shard_process_is_survived(server: ServerProcess) -> None:
    victim_q = queue_on_process(1)
    other_q = queue_on_process(0)
    server.wait_children(4)
    with server.connect() as s:
        # A blocked PULL in flight to the victim must get an error reply, not hang.
        s.sendall(orjson.dumps({"cmd": "PULL", "queue": victim_q, "timeout": 30000, "reqId": "p"})
                  + b"\n")  # fmt: skip
        time.sleep(0.3)
        old_pid = server.kill_child("shard 2/2")
        (reply,) = read_replies(s, 1, timeout_s=10)
        assert reply["reqId"] == "p"
        assert reply["ok"] is False
        assert "unavailable" in str(reply["error"]).lower()
        # The other shard process never noticed.
        s.sendall(orjson.dumps({"cmd": "PUSH", "queue": other_q, "data": 1}) + b"\n")
        (ok,) = read_replies(s, 1)
        assert ok["ok"] is True
    # The supervisor restarts it and the acceptor reconnects: later requests succeed.
    deadline = time.monotonic() + 30
    while True:
        kids = server.children()
        if kids.get("shard 2/2") not in (None, old_pid):
            break
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while True:
        try:
            with server.client() as c:
                assert isinstance(c.call("PUSH", queue=victim_q, data=2)["id"], int)
            break
        except UnavailableError:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    assert "restart #1" in server.log()


def test_sigkill_coordinator_is_survived(server: ServerProcess) -> None:
    kids = server.wait_children(4)
    server.kill_child("coordinator")
    with server.client() as c:
        # Requests keep working while the coordinator is down and after it is back.
        pushed = c.call("PUSH", queue="delayed", data=1, delay=300)
        deadline = time.monotonic() + 30
        while server.children().get("coordinator") in (None, kids["coordinator"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The restarted coordinator's ticks promote the delayed job and wake this PULL.
        pulled = c.call("PULL", queue="delayed", timeout=5000)
        assert pulled["job"]["id"] == pushed["id"]


def test_graceful_shutdown_exits_zero(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "d", shard_procs=1).start()
    with srv.client() as c:
        c.call("PUSH", queue="x", data=1)
    assert srv.stop() == 0
    log = srv.log()
    assert "received SIGTERM; shutting down" in log
    assert "stopped" in log


@pytest.fixture
def auth_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "d", shard_procs=1, env={"AUTH_TOKENS": "s3cret, other"})
    srv.start()
    yield srv
    srv.stop()


def test_auth_required_when_tokens_set(auth_server: ServerProcess) -> None:
    with auth_server.connect() as s:
        s.sendall(
            b'{"cmd":"PUSH","queue":"a","data":1,"reqId":"1"}\n'
            b'{"cmd":"AUTH","token":"wrong","reqId":"2"}\n'
            b'{"cmd":"AUTH","token":"other","reqId":"3"}\n'
            b'{"cmd":"PUSH","queue":"a","data":1,"reqId":"4"}\n'
        )
        r1, r2, r3, r4 = read_replies(s, 4)
    assert r1 == {"reqId": "1", "ok": False, "error": "Authentication required"}
    assert r2 == {"reqId": "2", "ok": False, "error": "Invalid token"}
    assert r3 == {"reqId": "3", "ok": True}
    assert r4["ok"] is True
    with pytest.raises(AuthenticationError):
        auth_server.client(token="nope")
    with auth_server.client(token="s3cret") as c:
        assert c.call("COUNT", queue="a")["count"] == 1


def test_auth_off_accepts_any_token(server: ServerProcess) -> None:
    with server.client(token="anything") as c:
        assert c.call("PING")["pong"] is True


def test_unix_socket_speaks_the_same_protocol(tmp_path: Path) -> None:
    path = str(tmp_path / "fq.sock")
    srv = ServerProcess(tmp_path / "d", shard_procs=1, extra=["--unix-socket", path]).start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            s.sendall(b'{"cmd":"PUSH","queue":"u","data":1}\n')
            (r,) = read_replies(s, 1)  # type: ignore[arg-type]
            assert r["ok"] is True
    finally:
        srv.stop()
