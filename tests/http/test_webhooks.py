"""Webhooks end to end: a real receiver on loopback checks the body, the signature, retries;
registrations survive a restart of the whole server."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.http.conftest import HttpServer, data, error, start_http_server, stop_server


class Receiver:
    """A tiny HTTP server that records POSTs and answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.got:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                    if not failing:
                        receiver.requests.append((dict(self.headers), body))
                    receiver.got.notify_all()
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.requests) >= n, timeout_s), self.requests
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_delivery_body_and_signature(api: HttpServer, receiver: Receiver) -> None:
    with api.http() as client:
        hook = data(client.post("/webhooks", json={
            "url": receiver.url, "events": ["job.completed"], "queue": "wh-q", "secret": "k3y",
        }))  # fmt: skip
        assert hook.startswith("wh_")
        listed = {w["id"]: w for w in data(client.get("/webhooks"))}
        assert listed[hook]["secret"] == "********"  # never listed in clear
        assert listed[hook]["events"] == ["job.completed"]
        (push,) = api.tcp({"cmd": "PUSH", "queue": "wh-q", "data": 1})
        api.tcp({"cmd": "PUSH", "queue": "wh-other", "data": 1})
        api.tcp({"cmd": "PULL", "queue": "wh-q", "timeout": 2000})
        api.tcp({"cmd": "ACK", "id": push["id"], "result": {"sent": True}})
        ((headers, body),) = receiver.wait(1)
        assert data(client.delete(f"/webhooks/{hook}")) is True
        assert data(client.delete(f"/webhooks/{hook}")) is False
    event = orjson.loads(body)
    # Keys in alphabetical order, compact, `error` null when absent.
    assert list(event) == ["data", "error", "event", "job_id", "queue", "timestamp"]
    assert body == orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    assert (event["event"], event["job_id"], event["queue"]) == ("completed", push["id"], "wh-q")
    assert event["data"] == {"sent": True}
    assert event["error"] is None
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert headers["X-FlashQ-Signature"] == expected
    assert headers["Content-Type"] == "application/json"


def test_failed_delivery_is_retried(api: HttpServer) -> None:
    receiver = Receiver(fail_first=1)
    try:
        with api.http() as client:
            hook = data(client.post("/webhooks", json={"url": receiver.url, "events": ["*"],
                                                       "queue": "wh-retry"}))  # fmt: skip
            (push,) = api.tcp({"cmd": "PUSH", "queue": "wh-retry", "data": {"a": 1}})
            ((headers, body),) = receiver.wait(1)
            data(client.delete(f"/webhooks/{hook}"))
        assert receiver.attempts == 2  # one 500, then the retry succeeded
        event = orjson.loads(body)
        assert (event["event"], event["job_id"], event["data"]) == ("pushed", push["id"], {"a": 1})
        assert "X-FlashQ-Signature" not in headers  # no secret, no signature
    finally:
        receiver.close()


def test_registration_errors(api: HttpServer) -> None:
    with api.http() as client:
        assert error(client.post("/webhooks", json={"events": ["*"]}), 422).startswith("Invalid")
        assert error(client.post("/webhooks", json={"url": "http://x.example", "events": "*"}), 422)
        assert error(client.post("/webhooks", json={"url": "nope", "events": ["*"]})) == (
            "Invalid URL: relative URL without a base"
        )


def test_webhooks_survive_a_restart(tmp_path: Path) -> None:
    server = start_http_server(tmp_path / "data", storage="embedded",
                               FLASHQ_WEBHOOK_ALLOW_PRIVATE="1")  # fmt: skip
    try:
        with server.http() as client:
            first = data(client.post("/webhooks", json={"url": "https://hooks.example.com/a",
                                                        "events": ["failed"]}))  # fmt: skip
        stop_server(server.srv)
        server.srv.start()
        server.wait_http()
        with server.http() as client:
            # GET waits for the acceptor to have read the stored list.
            assert [w["id"] for w in data(client.get("/webhooks"))] == [first]
            second = data(client.post("/webhooks", json={"url": "https://hooks.example.com/b",
                                                         "events": ["*"]}))  # fmt: skip
        assert int(second.removeprefix("wh_")) > int(first.removeprefix("wh_"))
    finally:
        stop_server(server.srv)
