"""Queue routes (PROTOCOL §5.2) over real HTTP against the real server."""

from __future__ import annotations

import httpx

from tests.http.conftest import HttpServer, data, error


def test_push_returns_the_full_job_and_tcp_sees_it(api: HttpServer, client: httpx.Client) -> None:
    job = data(client.post("/queues/rq-push/jobs", json={"data": {"to": "a@b.c"}, "priority": 5}))
    assert job["queue"] == "rq-push"
    assert job["data"] == {"to": "a@b.c"}
    assert job["priority"] == 5
    assert job["attempts"] == 0
    # The same job through the TCP front end: one engine behind both.
    (got,) = api.tcp({"cmd": "GETJOB", "id": job["id"]})
    assert got["state"] == "waiting"
    assert got["job"]["data"] == {"to": "a@b.c"}


def test_push_without_data_stores_null(client: httpx.Client) -> None:
    job = data(client.post("/queues/rq-nodata/jobs", json={}))
    assert job["data"] is None


def test_push_validation_matches_tcp_text(api: HttpServer, client: httpx.Client) -> None:
    bad_name = error(client.post("/queues/bad name!/jobs", json={"data": 1}))
    (tcp,) = api.tcp({"cmd": "PUSH", "queue": "bad name!", "data": 1})
    assert bad_name == tcp["error"]
    assert "alphanumeric" in bad_name
    # A mistyped field: the validator's text, HTTP 422.
    mistyped = error(client.post("/queues/rq-val/jobs", json={"data": 1, "priority": "x"}), 422)
    (tcp,) = api.tcp({"cmd": "PUSH", "queue": "rq-val", "data": 1, "priority": "x"})
    assert mistyped == tcp["error"]
    assert mistyped.startswith("Invalid: ")


def test_duplicate_unique_key_is_an_application_error(client: httpx.Client) -> None:
    body = {"data": 1, "unique_key": "k1"}
    data(client.post("/queues/rq-uniq/jobs", json=body))
    assert error(client.post("/queues/rq-uniq/jobs", json=body)) == "Duplicate job with key: k1"


def test_malformed_bodies(client: httpx.Client) -> None:
    bad_json = client.post("/queues/rq-bad/jobs", content=b"{nope",
                           headers={"Content-Type": "application/json"})  # fmt: skip
    error(bad_json, 400)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    not_json = client.post("/queues/rq-bad/jobs", content=b"a=1", headers=form)
    error(not_json, 415)
    assert "object" in error(client.post("/queues/rq-bad/jobs", json=[1, 2]), 422)
    too_big = client.post("/queues/rq-bad/jobs", content=b" " * (17 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})  # fmt: skip
    error(too_big, 413)


def test_unknown_path_and_wrong_method(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    assert client.put("/queues").status_code == 405


def test_batch_push_pull_with_count_and_timeout(client: httpx.Client) -> None:
    ids = data(
        client.post("/queues/rq-batch/jobs/batch", json={"jobs": [{"data": i} for i in range(3)]})
    )
    assert len(ids) == 3
    pulled = data(client.get("/queues/rq-batch/jobs", params={"count": 10, "timeout": 1000}))
    assert sorted(j["id"] for j in pulled) == sorted(ids)
    # Nothing left: the pull ends after its timeout with an empty list (no endless wait).
    assert data(client.get("/queues/rq-batch/jobs", params={"timeout": 50})) == []


def test_pull_one(client: httpx.Client) -> None:
    job = data(client.post("/queues/rq-pull1/jobs", json={"data": "x"}))
    (pulled,) = data(client.get("/queues/rq-pull1/jobs", params={"timeout": 1000}))
    assert pulled["id"] == job["id"]
    assert pulled["started_at"] > 0


def test_pull_abandoned_by_the_client_gives_the_job_back(client: httpx.Client) -> None:
    # The client hangs up while its PULL waits; a job pushed afterwards must not be lost in
    # `active` (the acceptor moves it straight back to waiting).
    try:
        client.get("/queues/rq-gone/jobs", params={"timeout": 3000}, timeout=0.3)
    except httpx.ReadTimeout:
        pass
    job = data(client.post("/queues/rq-gone/jobs", json={"data": 1}))
    (again,) = data(client.get("/queues/rq-gone/jobs", params={"timeout": 5000}))
    assert again["id"] == job["id"]


def test_pause_resume_paused(client: httpx.Client) -> None:
    assert data(client.post("/queues/rq-pause/pause")) is None
    assert data(client.get("/queues/rq-pause/paused")) is True
    assert data(client.post("/queues/rq-pause/resume", json={})) is None
    assert data(client.get("/queues/rq-pause/paused")) is False


def test_counts_count_and_list(client: httpx.Client) -> None:
    for i in range(2):
        data(client.post("/queues/rq-counts/jobs", json={"data": i}))
    data(client.post("/queues/rq-counts/jobs", json={"data": 9, "delay": 60_000}))
    counts = data(client.get("/queues/rq-counts/counts"))
    assert counts == {"waiting": 2, "active": 0, "delayed": 1, "completed": 0, "failed": 0}
    assert data(client.get("/queues/rq-counts/count")) == 3
    listed = {q["name"]: q for q in data(client.get("/queues"))}
    assert listed["rq-counts"]["pending"] == 2
    assert listed["rq-counts"]["delayed"] == 1


def test_dlq_list_retry_one_retry_all_purge(client: httpx.Client) -> None:
    ids = [data(client.post("/queues/rq-dlq/jobs", json={"data": i, "max_attempts": 1}))["id"]
           for i in range(3)]  # fmt: skip
    for job in data(client.get("/queues/rq-dlq/jobs", params={"count": 3, "timeout": 1000})):
        data(client.post(f"/jobs/{job['id']}/fail", json={"error": "boom"}))
    assert sorted(j["id"] for j in data(client.get("/queues/rq-dlq/dlq"))) == sorted(ids)
    assert data(client.post("/queues/rq-dlq/dlq/retry", json={"job_id": ids[0]})) == 1
    assert data(client.post(f"/queues/rq-dlq/dlq/{ids[1]}/retry")) == 1  # TS SDK spelling
    assert data(client.get("/jobs/" + str(ids[0]) + "/state")) == "waiting"
    assert data(client.delete("/queues/rq-dlq/dlq")) == 1
    assert data(client.get("/queues/rq-dlq/dlq")) == []
    assert data(client.post("/queues/rq-dlq/dlq/retry")) == 0


def test_limits_set_and_clear(client: httpx.Client) -> None:
    assert data(client.post("/queues/rq-lim/rate-limit", json={"limit": 5})) is None
    assert data(client.post("/queues/rq-lim/concurrency", json={"limit": 2})) is None
    data(client.post("/queues/rq-lim/jobs", json={"data": 1}))
    info = {q["name"]: q for q in data(client.get("/queues"))}["rq-lim"]
    assert (info["rate_limit"], info["concurrency_limit"]) == (5, 2)
    assert data(client.delete("/queues/rq-lim/rate-limit")) is None
    assert data(client.delete("/queues/rq-lim/concurrency")) is None
    data(client.post("/queues/rq-lim/ratelimit", json={"limit": 7}))  # TS SDK spelling
    info = {q["name"]: q for q in data(client.get("/queues"))}["rq-lim"]
    assert (info["rate_limit"], info["concurrency_limit"]) == (7, None)
    assert error(client.post("/queues/rq-lim/rate-limit", json={}), 422).startswith("Invalid: ")


def test_drain_clean_obliterate(client: httpx.Client) -> None:
    for i in range(3):
        data(client.post("/queues/rq-drain/jobs", json={"data": i}))
    assert data(client.post("/queues/rq-drain/drain")) == 3
    for i in range(2):
        data(client.post("/queues/rq-drain/jobs", json={"data": i}))
    assert data(client.post("/queues/rq-drain/clean", json={"grace": 0, "state": "waiting"})) == 2
    bad = error(client.post("/queues/rq-drain/clean", json={"grace": 0, "state": "nope"}))
    assert bad == "Invalid state. Use: waiting, delayed, completed, failed"
    data(client.post("/queues/rq-drain/jobs", json={"data": 1}))
    assert data(client.delete("/queues/rq-drain/obliterate")) == 1


def test_flow_and_its_ts_alias(client: httpx.Client) -> None:
    body = {"data": {"p": 1}, "children": [{"queue": "rq-flow-c", "data": 1},
                                           {"queue": "rq-flow-c", "data": 2}]}  # fmt: skip
    flow = data(client.post("/queues/rq-flow/flow", json=body))
    assert len(flow["children_ids"]) == 2
    children = data(client.get(f"/jobs/{flow['parent_id']}/children"))
    assert sorted(children["children"]) == sorted(flow["children_ids"])
    assert (children["completed"], children["total"]) == (0, 2)
    alias = data(
        client.post(
            "/flows",
            json={
                "queue": "rq-flow",
                "parent_data": 1,
                "children": [{"queue": "rq-flow-c", "data": 3}],
            },
        )
    )
    assert len(alias["children_ids"]) == 1
    assert error(client.post("/queues/rq-flow/flow", json={"data": 1, "children": []})) == (
        "Flow must have at least one child"
    )
