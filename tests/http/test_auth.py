"""Bearer auth (PROTOCOL §5.1) and CORS, against a server with AUTH_TOKENS set."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.http.conftest import TOKEN, HttpServer, data, error

PROTECTED = [
    ("GET", "/queues"),
    ("POST", "/queues/a-q/jobs"),
    ("GET", "/jobs/1"),
    ("GET", "/stats"),
    ("GET", "/metrics/history"),
    ("GET", "/dashboard/snapshot"),
    ("GET", "/webhooks"),
    ("POST", "/webhooks/incoming/a-q"),  # upstream leaves this one open ⚠; not here
    ("POST", "/api/command"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_routes_need_the_token(secured: HttpServer, method: str, path: str) -> None:
    with secured.http(auth=False) as anonymous:
        response = anonymous.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.text == "Invalid or missing authentication token"
    with secured.http(auth=False) as wrong:
        bad = wrong.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_query_token_is_not_enough_for_rest(secured: HttpServer) -> None:
    with secured.http(auth=False) as anonymous:
        assert anonymous.get("/queues", params={"token": TOKEN}).status_code == 401


@pytest.mark.parametrize("path", ["/health", "/metrics/prometheus", "/docs", "/openapi.json",
                                  "/", "/dashboard", "/static/app.js"])  # fmt: skip
def test_public_routes(secured: HttpServer, path: str) -> None:
    with secured.http(auth=False) as anonymous:
        assert anonymous.get(path).status_code == 200


def test_with_the_token_everything_works(secured: HttpServer) -> None:
    with secured.http() as client:
        job = data(client.post("/webhooks/incoming/a-hook", json={"from": "github"}))
        assert job["data"] == {"from": "github"}
        assert data(client.get(f"/jobs/{job['id']}/state")) == "waiting"
        reply = client.post("/api/command", json={"cmd": "AUTH", "token": "wrong"}).json()
        assert reply == {"ok": False, "error": "Invalid token"}


def test_webhook_urls_are_checked_without_the_test_allowance(secured: HttpServer) -> None:
    with secured.http() as client:
        body = {"url": "http://127.0.0.1:9/hook", "events": ["completed"]}
        assert error(client.post("/webhooks", json=body)) == (
            "Localhost URLs are not allowed for webhooks"
        )
        body["url"] = "http://10.1.2.3/hook"
        assert error(client.post("/webhooks", json=body)) == (
            "Private/internal IP addresses are not allowed: 10.1.2.3"
        )
        body["url"] = "ftp://example.com/x"
        assert error(client.post("/webhooks", json=body)) == (
            "Invalid scheme 'ftp': only http/https allowed"
        )


def test_cors_preflight_and_headers(secured: HttpServer) -> None:
    with secured.http(auth=False) as anonymous:
        pre = anonymous.options("/queues", headers={
            "Origin": "http://example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        })  # fmt: skip
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "*"
        denied = anonymous.get("/queues", headers={"Origin": "http://example.com"})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == "*"


async def test_websocket_token_in_query(secured: HttpServer) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{secured.ws_base}/ws?token={TOKEN}") as ws:
            await trio.to_thread.run_sync(
                lambda: secured.tcp({"cmd": "PUSH", "queue": "a-wsq", "data": 1})
            )
            event = await ws.get_message()
            assert '"event_type":"pushed"' in event


async def test_websocket_wrong_token_is_rejected_before_upgrade(secured: HttpServer) -> None:
    with trio.fail_after(10), pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{secured.ws_base}/ws?token=nope"):
            pass
    assert rejected.value.status_code == 401


async def test_websocket_auth_frame(secured: HttpServer) -> None:
    """The TypeScript SDK connects without a token and sends {"type":"auth"} first."""
    with trio.fail_after(10):
        async with open_websocket_url(f"{secured.ws_base}/ws/a-frame") as ws:
            await ws.send_message('{"type":"auth","token":"' + TOKEN + '"}')
            # The subscription starts once the frame is accepted; push until an event arrives.
            while True:
                await trio.to_thread.run_sync(
                    lambda: secured.tcp({"cmd": "PUSH", "queue": "a-frame", "data": 2})
                )
                with trio.move_on_after(0.5):
                    event = await ws.get_message()
                    break
            assert '"queue":"a-frame"' in event


async def test_websocket_bad_auth_frame_closes(secured: HttpServer) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{secured.ws_base}/ws") as ws:
            await ws.send_message('{"type":"auth","token":"nope"}')
            with pytest.raises(Exception, match="1008"):
                await ws.get_message()


async def test_sse_token_in_query_and_401_without(secured: HttpServer) -> None:
    async with httpx.AsyncClient(base_url=secured.base, timeout=10) as client:
        assert (await client.get("/events")).status_code == 401
        async with client.stream("GET", "/events/a-sse", params={"token": TOKEN}) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await anext(lines) == ": connected"
