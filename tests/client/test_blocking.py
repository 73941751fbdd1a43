"""The blocking client against the scripted fake server, and its method table."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator

import pytest

from flashq.client import BlockingClient, ClientClosedError, ConnectError, Job, JobState
from flashq.client._api import Api
from flashq.errors import ConflictError, ConnectionClosedError, TimeoutError_
from tests.client.fake_server import FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def _public_coroutines() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in inspect.getmembers(Api, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def test_blocking_client_mirrors_every_async_method_with_the_same_signature():
    methods = _public_coroutines()
    assert len(methods) > 50
    for name, sig in methods.items():
        twin = getattr(BlockingClient, name, None)
        assert twin is not None, f"BlockingClient lacks {name}"
        assert not inspect.iscoroutinefunction(twin)
        assert inspect.signature(twin) == sig, name


def test_call_returns_the_reply_without_req_id_and_maps_errors(fake: FakeServer):
    with BlockingClient("127.0.0.1", fake.port) as client:
        assert client.call("ECHO", x=1) == {"ok": True, "echo": {"cmd": "ECHO", "x": 1}}
        with pytest.raises(ConflictError):
            client.call("ERR", text="Duplicate job with key: k")


def test_push_batch_pipelines_its_chunks_on_one_connection(fake: FakeServer):
    with BlockingClient(port=fake.port) as client:
        ids = client.push_batch("q", [(i, {"priority": i}) for i in range(1500)])
    assert ids == list(range(1, 1501))
    pushb = [r for r in fake.requests if r["cmd"] == "PUSHB"]
    assert [len(r["jobs"]) for r in pushb] == [1000, 500]
    assert pushb[1]["jobs"][0] == {"data": 1000, "priority": 1000}
    assert fake.accepted == 1


def test_timeout_forgets_the_request_and_the_late_reply_is_ignored(fake: FakeServer):
    with BlockingClient(port=fake.port, timeout_s=0.1) as client:
        with pytest.raises(TimeoutError_):
            client.call("HANG")
        assert client.push("q", 1) == 1
    assert fake.accepted == 1


def test_idle_connection_to_a_restarted_server_is_replaced_before_use(fake: FakeServer):
    with BlockingClient(port=fake.port) as client:
        assert client.push("q", 1) == 1
        fake.stop()
        fake.start()
        assert client.push("q", 2) == 2  # no ConnectionClosedError: the EOF was seen first
    assert fake.accepted == 2


def test_drop_while_in_flight_raises_connection_closed(fake: FakeServer):
    def drop_when_hung() -> None:
        deadline = time.monotonic() + 5
        while not any(r.get("cmd") == "HANG" for r in fake.requests):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        fake.drop_connections()

    with BlockingClient(port=fake.port) as client:
        threading.Thread(target=drop_when_hung).start()
        with pytest.raises(ConnectionClosedError):
            client.call("HANG")
        client.ping()  # reconnected
    assert fake.accepted == 2


def test_threads_share_a_small_pool(fake: FakeServer):
    errors: list[BaseException] = []
    with BlockingClient(port=fake.port, pool_size=2) as client:

        def work() -> None:
            try:
                for _ in range(20):
                    client.push("q", None)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert sum(r["cmd"] == "PUSH" for r in fake.requests) == 160
    assert fake.accepted <= 2


def test_constructor_fails_fast_with_connect_error_an_oserror():
    srv = FakeServer().start()
    port = srv.port
    srv.stop()
    with pytest.raises(ConnectError) as info:
        BlockingClient(port=port, timeout_s=1)
    assert isinstance(info.value, OSError)


def test_closed_client_refuses_calls(fake: FakeServer):
    client = BlockingClient(port=fake.port)
    client.close()
    with pytest.raises(ClientClosedError):
        client.ping()


def test_jobs_of_the_blocking_client_have_synchronous_helpers(fake: FakeServer):
    with BlockingClient(port=fake.port) as client:
        job = client.get_job(7)
        assert isinstance(job, Job)
        assert (job.id, job.priority, job.state) == (7, 3, JobState.ACTIVE)
        job.log("hello")  # runs now: no await needed
        job.update_progress(150, "almost")
    sent = [r for r in fake.requests if r["cmd"] in ("LOG", "PROGRESS")]
    assert sent == [
        {"cmd": "LOG", "id": 7, "message": "hello", "level": "info"},
        {"cmd": "PROGRESS", "id": 7, "progress": 100, "message": "almost"},
    ]
