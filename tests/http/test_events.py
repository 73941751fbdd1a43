"""Live events: WebSocket and SSE streams see TCP-side pushes and acks, in order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from flashq.server.http.events import MAX_WEBSOCKETS
from tests.http.conftest import HttpServer


def push_pull_ack(api: HttpServer, queue: str, result: Any) -> int:
    """Over TCP: push one job, pull it, ack it with `result`; the job id."""
    (push,) = api.tcp({"cmd": "PUSH", "queue": queue, "data": {"n": 1}})
    (pull,) = api.tcp({"cmd": "PULL", "queue": queue, "timeout": 2000})
    assert pull["job"]["id"] == push["id"]
    (ack,) = api.tcp({"cmd": "ACK", "id": push["id"], "result": result})
    assert ack["ok"] is True
    return int(push["id"])


async def ws_events(ws: WebSocketConnection, n: int) -> list[dict[str, Any]]:
    return [orjson.loads(await ws.get_message()) for _ in range(n)]


async def test_ws_all_events_in_order(api: HttpServer) -> None:
    with trio.fail_after(15):
        async with open_websocket_url(f"{api.ws_base}/ws") as ws:
            job_id = await trio.to_thread.run_sync(push_pull_ack, api, "ev-ws", {"ok": 1})
            events = [e for e in await ws_events(ws, 2) if e["job_id"] == job_id]
    assert [e["event_type"] for e in events] == ["pushed", "completed"]
    pushed, completed = events
    assert pushed["queue"] == "ev-ws"
    assert pushed["data"] == {"n": 1}
    assert completed["data"] == {"ok": 1}
    assert pushed["timestamp"] <= completed["timestamp"]


async def test_ws_queue_filter(api: HttpServer) -> None:
    with trio.fail_after(15):
        async with open_websocket_url(f"{api.ws_base}/ws/ev-only") as ws:

            def traffic() -> int:
                api.tcp({"cmd": "PUSH", "queue": "ev-other", "data": 0})
                return push_pull_ack(api, "ev-only", None)

            job_id = await trio.to_thread.run_sync(traffic)
            events = await ws_events(ws, 2)
    assert {e["queue"] for e in events} == {"ev-only"}
    assert [(e["event_type"], e["job_id"]) for e in events] == [
        ("pushed", job_id), ("completed", job_id),
    ]  # fmt: skip
    assert "data" not in events[1]  # no result: the key is omitted


async def sse_events(lines: AsyncIterator[str], n: int) -> list[tuple[str, dict[str, Any]]]:
    """Read `n` SSE messages as (event name, JSON data), skipping comments."""
    out: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            out.append((name, orjson.loads(line.removeprefix("data: "))))
            if len(out) == n:
                return out
    raise AssertionError("stream ended")


async def open_sse(client: httpx.AsyncClient, path: str) -> tuple[Any, AsyncIterator[str]]:
    stream = client.stream("GET", path)
    response = await stream.__aenter__()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = response.aiter_lines()
    assert await anext(lines) == ": connected"  # the subscription exists from here on
    return stream, lines


async def test_sse_routes(api: HttpServer) -> None:
    async with httpx.AsyncClient(base_url=api.base, timeout=15) as client:
        with trio.fail_after(20):
            all_stream, all_lines = await open_sse(client, "/events")
            q_stream, q_lines = await open_sse(client, "/events/ev-sse")
            ts_stream, ts_lines = await open_sse(client, "/queues/ev-sse/events")
            job_id = await trio.to_thread.run_sync(push_pull_ack, api, "ev-sse", 7)
            for lines in (q_lines, ts_lines):
                events = await sse_events(lines, 2)
                assert [(n, e["job_id"]) for n, e in events] == [
                    ("pushed", job_id), ("completed", job_id),
                ]  # fmt: skip
                assert events[1][1]["data"] == 7
            everything = [e for _, e in await sse_events(all_lines, 2)]
            assert {e["job_id"] for e in everything} == {job_id}
            for stream in (all_stream, q_stream, ts_stream):
                await stream.__aexit__(None, None, None)


async def test_sse_one_job_with_type_filter(api: HttpServer) -> None:
    (push,) = await trio.to_thread.run_sync(
        lambda: api.tcp({"cmd": "PUSH", "queue": "ev-job", "data": 1})
    )
    job_id = push["id"]
    async with httpx.AsyncClient(base_url=api.base, timeout=15) as client:
        with trio.fail_after(20):
            stream, lines = await open_sse(client, f"/events/job/{job_id}?events=completed")

            def finish() -> None:
                api.tcp({"cmd": "PUSH", "queue": "ev-job", "data": 2})
                (pull,) = api.tcp({"cmd": "PULL", "queue": "ev-job", "timeout": 2000})
                api.tcp({"cmd": "PROGRESS", "id": pull["job"]["id"], "progress": 50})
                api.tcp({"cmd": "ACK", "id": pull["job"]["id"], "result": "r"})

            await trio.to_thread.run_sync(finish)
            ((name, event),) = await sse_events(lines, 1)
            await stream.__aexit__(None, None, None)
    assert (name, event["job_id"], event["data"]) == ("completed", job_id, "r")


async def test_slow_websocket_consumer_is_told_about_drops(api: HttpServer) -> None:
    """A consumer that stops reading while 16 MB of events pass (more than the socket buffers
    hold) loses the oldest of what the hub buffers for it (1,024 events) and is sent a
    `dropped` frame before the events that follow the gap; nothing else goes missing."""
    total = 2000
    pad = "x" * 8000
    with trio.fail_after(60):
        async with open_websocket_url(f"{api.ws_base}/ws/ev-slow", message_queue_size=0) as ws:

            def flood() -> None:
                api.tcp(*({"cmd": "PUSH", "queue": "ev-slow", "data": {"i": i, "pad": pad}}
                          for i in range(total)))  # fmt: skip

            await trio.to_thread.run_sync(flood)
            seen: list[dict[str, Any]] = []
            while not seen or (seen[-1].get("data") or {}).get("i") != total - 1:
                seen.append(orjson.loads(await ws.get_message()))
    dropped = [e for e in seen if e["event_type"] == "dropped"]
    indexes = [e["data"]["i"] for e in seen if e["event_type"] == "pushed"]
    assert dropped, "the consumer was never slow enough to lose events"
    assert len(indexes) + sum(e["dropped"] for e in dropped) == total
    assert indexes == sorted(indexes)


async def test_at_most_100_websockets(api: HttpServer) -> None:
    """The 101st WebSocket is refused with 503 while 100 are open (events and dashboard
    share the cap); closing one makes room again."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            opened: list[WebSocketConnection] = []
            release = trio.Event()

            async def hold(path: str, task_status: trio.TaskStatus[None]) -> None:
                async with open_websocket_url(f"{api.ws_base}{path}") as ws:
                    opened.append(ws)
                    task_status.started()
                    await release.wait()

            for i in range(MAX_WEBSOCKETS):
                await nursery.start(hold, "/ws/dashboard" if i == 0 else f"/ws/ev-cap-{i}")
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(f"{api.ws_base}/ws"):
                    pass
            assert rejected.value.status_code == 503
            assert rejected.value.body == b"Too many WebSocket connections"
            await opened[-1].aclose()
            # The server notices the close asynchronously; retry briefly until admitted.
            while True:
                try:
                    async with open_websocket_url(f"{api.ws_base}/ws"):
                        break
                except ConnectionRejected:
                    await trio.sleep(0.05)
            release.set()


def hub_statistics(api: HttpServer) -> dict[str, int]:
    with api.http() as client:
        response = client.get("/dashboard/snapshot")
    events: dict[str, int] = response.json()["data"]["events"]
    return events


def wait_for_no_listener(api: HttpServer) -> dict[str, int]:
    """The server notices a closed WebSocket asynchronously: poll until it has."""
    deadline = time.monotonic() + 15
    while (stats := hub_statistics(api))["wanted"]:
        assert time.monotonic() < deadline, stats
        time.sleep(0.02)
    return stats


async def test_events_are_built_only_while_someone_listens(api: HttpServer) -> None:
    """Shard processes build no job events while nobody subscribes (it would cost every push
    and ack a link message); a subscriber turns them on, its departure off again."""
    quiet = await trio.to_thread.run_sync(hub_statistics, api)
    assert quiet["wanted"] == 0
    await trio.to_thread.run_sync(push_pull_ack, api, "ev-demand", None)
    assert (await trio.to_thread.run_sync(hub_statistics, api))["published"] == quiet["published"]
    with trio.fail_after(15):
        async with open_websocket_url(f"{api.ws_base}/ws/ev-demand") as ws:
            assert (await trio.to_thread.run_sync(hub_statistics, api))["wanted"] == 1
            job_id = await trio.to_thread.run_sync(push_pull_ack, api, "ev-demand", None)
            events = await ws_events(ws, 2)
    assert [(e["event_type"], e["job_id"]) for e in events] == [
        ("pushed", job_id),
        ("completed", job_id),
    ]
    stats = await trio.to_thread.run_sync(wait_for_no_listener, api)
    await trio.to_thread.run_sync(push_pull_ack, api, "ev-demand", None)
    assert (await trio.to_thread.run_sync(hub_statistics, api))["published"] == stats["published"]
