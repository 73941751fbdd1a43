"""Real servers with the HTTP API on, shared per module (starting one takes about a second).

Tests that share a server use their own queue names, so they do not see each other's jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.harness import ServerProcess, free_port, read_replies

TOKEN = "s3cret-token"


class HttpServer:
    """A running `flashq serve --http` and the ways to talk to it."""

    def __init__(self, srv: ServerProcess, http_port: int, token: str | None = None) -> None:
        self.srv = srv
        self.http_port = http_port
        self.base = f"http://127.0.0.1:{http_port}"
        self.ws_base = f"ws://127.0.0.1:{http_port}"
        self.token = token

    def http(self, *, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=20)

    def tcp(self, *objs: dict[str, Any]) -> list[dict[str, Any]]:
        """Raw TCP round trip (JSON lines), authenticating first when the server has a token."""
        lines = list(objs)
        if self.token:
            lines.insert(0, {"cmd": "AUTH", "token": self.token})
        with self.srv.connect() as s:
            s.sendall(b"".join(orjson.dumps(o) + b"\n" for o in lines))
            replies = list(read_replies(s, len(lines)))
        return replies[1:] if self.token else replies

    def wait_http(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("HTTP API not up:\n" + self.srv.log())
            time.sleep(0.05)


def stop_server(srv: ServerProcess) -> None:
    srv.stop()  # the harness closes the output pipe once it has read it to the end


def start_http_server(
    data_dir: Path,
    *,
    token: str | None = None,
    storage: str = "memory",
    prefix: tuple[str, ...] = (),
    **env: str,
) -> HttpServer:
    """`prefix`: a command that runs the server (e.g. `taskset -c 0`)."""
    port = free_port()
    environ = {"DASHBOARD_INTERVAL_MS": "200", **env}
    if token:
        environ["AUTH_TOKENS"] = token
    srv = ServerProcess(
        data_dir, shard_procs=2, storage=storage,
        extra=["--http", "--http-port", str(port)], env=environ,
    )  # fmt: skip
    srv.args = [*prefix, *srv.args]
    srv.start()
    server = HttpServer(srv, port, token)
    try:
        server.wait_http()
    except Exception:
        stop_server(srv)
        raise
    return server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """No auth; webhooks may target loopback (the tests' own receivers)."""
    server = start_http_server(tmp_path_factory.mktemp("http"), FLASHQ_WEBHOOK_ALLOW_PRIVATE="1")
    try:
        yield server
    finally:
        stop_server(server.srv)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """AUTH_TOKENS set; webhook SSRF rules on (the production setting)."""
    server = start_http_server(tmp_path_factory.mktemp("http-auth"), token=TOKEN)
    try:
        yield server
    finally:
        stop_server(server.srv)


@pytest.fixture
def client(api: HttpServer) -> Iterator[httpx.Client]:
    with api.http() as c:
        yield c


def data(response: httpx.Response) -> Any:
    """The envelope's data, asserting success."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True, body
    return body["data"]


def error(response: httpx.Response, status: int = 200) -> str:
    """The envelope's error text, asserting failure with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False, body
    text: str = body["error"]
    return text
