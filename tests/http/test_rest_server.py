"""Server-wide routes: crons, stats, metrics (JSON, history, Prometheus), workers, health,
POST /api/command, and the API reference."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.http.conftest import HttpServer, data, error, start_http_server, stop_server


def test_crons_create_list_delete(client: httpx.Client) -> None:
    body = {"queue": "rs-cron", "data": {"x": 1}, "schedule": "0 0 * * * *"}
    assert data(client.post("/crons/rs-nightly", json=body)) is None
    data(client.put("/crons/rs-every", json={"queue": "rs-cron", "repeat_every": 60_000}))
    crons = {c["name"]: c for c in data(client.get("/crons"))}
    assert crons["rs-nightly"]["schedule"] == "0 0 * * * *"
    assert crons["rs-every"]["repeat_every"] == 60_000
    assert data(client.delete("/crons/rs-nightly")) is True
    assert data(client.delete("/crons/rs-nightly")) is False
    assert error(client.post("/crons/rs-bad", json={"queue": "q", "data": 1})) == (
        "Must provide either 'schedule' or 'repeat_every'"
    )


def test_stats_and_metrics(client: httpx.Client) -> None:
    data(client.post("/queues/rs-stats/jobs", json={"data": 1}))
    stats = data(client.get("/stats"))
    assert stats["queued"] >= 1
    assert stats["queues"]["rs-stats"]["waiting"] == 1
    metrics = data(client.get("/metrics"))
    assert metrics["total_pushed"] >= 1
    assert any(q["name"] == "rs-stats" for q in metrics["queues"])


def test_metrics_history_points(client: httpx.Client) -> None:
    # The acceptor samples once at start, then every 5 s.
    points = data(client.get("/metrics/history"))
    assert 1 <= len(points) <= 60
    assert set(points[0]) == {
        "timestamp", "queued", "processing", "completed", "failed", "throughput", "latency_ms",
    }  # fmt: skip


def test_prometheus_exposition(client: httpx.Client) -> None:
    job = data(client.post("/queues/rs-prom/jobs", json={"data": 1}))
    data(client.get("/queues/rs-prom/jobs", params={"timeout": 1000}))
    data(client.post(f"/jobs/{job['id']}/ack", json={}))
    batch = data(client.post("/queues/rs-prom/jobs/batch", json={"jobs": [{"data": 2}]}))
    data(client.get("/queues/rs-prom/jobs", params={"timeout": 1000}))
    data(client.post(f"/jobs/{batch[0]}/ack", json={}))
    response = httpx.get(str(client.base_url) + "/metrics/prometheus")  # public, no token
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    # Every sample belongs to a family announced by exactly one HELP and one TYPE line.
    families = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    assert [f for f, _ in families] == helps
    assert len(set(helps)) == len(helps)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-z_]+", line)
            assert name is not None
            base = re.sub(r"_(bucket|sum|count)$", "", name.group())
            assert name.group() in helps or base in helps, line
    assert dict(families)["flashq_jobs_pushed_total"] == "counter"
    assert dict(families)["flashq_job_latency_ms"] == "histogram"
    assert 'flashq_queue_jobs{queue="rs-prom",state="pending"} 0' in text
    # Both push→ack spans observed, the batch-pushed job's too (label escaping:
    # test_metrics_unit).
    assert 'flashq_job_latency_ms_count{queue="rs-prom"} 2' in text
    assert 'flashq_job_latency_ms_bucket{queue="rs-prom",le="+Inf"} 2' in text
    # Per shard process gauges: two processes, both up.
    assert 'flashq_shard_process_up{process="0"} 1' in text
    assert 'flashq_shard_process_up{process="1"} 1' in text
    assert re.search(r'flashq_group_commit_batch_size\{process="0"\} [0-9.]+', text)
    assert re.search(r'flashq_storage_write_latency_us\{process="1",stat="avg"\} ', text)


def test_shards_route(client: httpx.Client) -> None:
    rows = data(client.get("/shards"))
    assert [r["index"] for r in rows] == [0, 1]
    assert all(r["up"] for r in rows)
    assert sorted(s for r in rows for s in r["shards"]) == list(range(32))


def test_workers_heartbeat(client: httpx.Client) -> None:
    body = {"queues": ["a", "b"], "concurrency": 4, "jobs_processed": 12}
    assert data(client.post("/workers/w-1/heartbeat", json=body)) is None
    (worker,) = [w for w in data(client.get("/workers")) if w["id"] == "w-1"]
    assert (worker["queues"], worker["concurrency"], worker["jobs_processed"]) == (
        ["a", "b"], 4, 12,
    )  # fmt: skip
    assert error(client.post("/workers/w-2/heartbeat", json={"queues": "a"}), 422)


def test_tcp_workers_are_seen(api: HttpServer, client: httpx.Client) -> None:
    # A TCP connection that pulls is listed as a worker, with its queues and acks counted.
    with api.srv.client() as tcp:
        tcp.call("PUSHB", queue="rs-seen", jobs=[{"data": i} for i in range(3)])
        jobs = tcp.call("PULLB", queue="rs-seen", count=3, timeout=1000)["jobs"]
        tcp.call("ACKB", ids=[j["id"] for j in jobs])
        seen = [w for w in data(client.get("/workers")) if "rs-seen" in w["queues"]]
    assert len(seen) == 1
    assert seen[0]["id"].startswith("tcp-")
    assert seen[0]["jobs_processed"] == 3


def test_health_is_public(api: HttpServer) -> None:
    health = data(httpx.get(api.base + "/health"))
    assert health["status"] == "healthy"
    assert health["role"] == "leader"
    assert health["storage"] == "memory"
    assert health["uptime_ms"] >= 0
    assert (health["shard_procs"], health["shard_procs_up"]) == (2, 2)


def test_api_command_is_the_tcp_reply(api: HttpServer, client: httpx.Client) -> None:
    push = client.post("/api/command", json={"cmd": "PUSH", "queue": "rs-cmd", "data": 5,
                                             "reqId": "r1"})  # fmt: skip
    assert push.status_code == 200
    reply = push.json()
    assert reply["reqId"] == "r1"
    assert reply["ok"] is True
    got = client.post("/api/command", json={"cmd": "GETJOB", "id": reply["id"]}).json()
    assert got["job"]["data"] == 5
    pulled = client.post("/api/command", json={"cmd": "PULL", "queue": "rs-cmd",
                                               "timeout": 1000}).json()  # fmt: skip
    assert pulled["job"]["id"] == reply["id"]
    assert client.post("/api/command", json={"cmd": "PING"}).json() == {"ok": True, "pong": True}
    bad = client.post("/api/command", json={"cmd": "NOPE"}).json()
    (tcp,) = api.tcp({"cmd": "NOPE"})
    assert bad == tcp
    internal = client.post("/api/command", json={"cmd": "_STATS"}).json()
    assert internal["ok"] is False
    assert client.post("/api/command", json={"cmd": "AUTH", "token": "x"}).json() == {"ok": True}


def test_openapi_and_docs(api: HttpServer) -> None:
    document = httpx.get(api.base + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/queues/{q}/jobs"]
    assert "get" in document["paths"]["/jobs/{id}/wait"]
    assert document["paths"]["/health"]["get"]["security"] == []
    page = httpx.get(api.base + "/docs")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/queues/{q}/dlq/retry" in page.text
    assert "/events/job/{id}" in page.text


def test_shard_processes_busy_poll_by_default(api: HttpServer, client: httpx.Client) -> None:
    with api.srv.client() as tcp:
        for i in range(50):  # sequential: each reply leaves the shard process polling
            tcp.push("busy-poll", {"i": i})
    rows = data(client.get("/shards"))
    assert sum(r["busy_polls"] for r in rows) > 0
    text = client.get("/metrics/prometheus").text
    assert re.search(r'flashq_busy_polls_total\{process="[01]"\} [1-9]', text)


def test_busy_polling_can_be_turned_off(tmp_path: Path) -> None:
    server = start_http_server(tmp_path, FLASHQ_BUSY_POLL_US="0")
    try:
        with server.srv.client() as tcp:
            ids = [tcp.push("no-busy-poll", {"i": i}) for i in range(50)]
            assert len(set(ids)) == 50
        with server.http() as http:
            rows = data(http.get("/shards"))
        assert [r["busy_polls"] for r in rows] == [0, 0]
    finally:
        stop_server(server.srv)


def test_a_server_on_one_cpu_never_polls(tmp_path: Path) -> None:
    # Confined to one CPU, a poller would only hold the CPU its reply needs.
    server = start_http_server(tmp_path, prefix=("taskset", "-c", "0"))
    try:
        with server.srv.client() as tcp:
            for i in range(50):
                tcp.push("one-cpu", {"i": i})
        with server.http() as http:
            rows = data(http.get("/shards"))
        assert [r["busy_polls"] for r in rows] == [0, 0]
        assert sum(r["requests"] for r in rows) >= 50
    finally:
        stop_server(server.srv)
