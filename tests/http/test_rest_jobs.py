"""Job routes (PROTOCOL §5.3) and the TypeScript SDK's spellings, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.http.conftest import HttpServer, data, error


def active_job(client: httpx.Client, queue: str, **fields: Any) -> dict[str, Any]:
    """Push one job and pull it, so it is active."""
    pushed = data(client.post(f"/queues/{queue}/jobs", json={"data": {"n": 1}, **fields}))
    (job,) = data(client.get(f"/queues/{queue}/jobs", params={"timeout": 2000}))
    assert job["id"] == pushed["id"]
    return dict(job)


def test_get_job_flattens_state_and_result(client: httpx.Client) -> None:
    job = active_job(client, "rj-get")
    got = data(client.get(f"/jobs/{job['id']}"))
    assert got["state"] == "active"
    assert got["result"] is None
    assert got["data"] == {"n": 1}
    data(client.post(f"/jobs/{job['id']}/ack", json={"result": {"done": True}}))
    assert data(client.get(f"/jobs/{job['id']}/result")) == {"done": True}
    assert data(client.get(f"/jobs/{job['id']}"))["result"] == {"done": True}
    assert data(client.get(f"/jobs/{job['id']}/state")) == "completed"
    unknown = data(client.get("/jobs/999999999"))
    assert unknown == {"state": "unknown", "result": None}


def test_non_numeric_id_is_400(client: httpx.Client) -> None:
    assert client.get("/jobs/abc/state").status_code == 400
    assert client.post("/jobs/-1/ack", json={}).status_code == 400


def test_ack_and_fail_errors_are_the_tcp_texts(api: HttpServer, client: httpx.Client) -> None:
    text = error(client.post("/jobs/999999999/ack", json={}))
    (tcp,) = api.tcp({"cmd": "ACK", "id": 999999999})
    assert text == tcp["error"] == "Job 999999999 not found"
    assert error(client.post("/jobs/999999999/fail", json={})) == "Job 999999999 not found"


def test_fail_retries_with_the_error_in_progress_msg(client: httpx.Client) -> None:
    job = active_job(client, "rj-fail")
    data(client.post(f"/jobs/{job['id']}/fail", json={"error": "flaky"}))
    got = data(client.get(f"/jobs/{job['id']}"))
    assert (got["state"], got["attempts"], got["progress_msg"]) == ("waiting", 1, "flaky")


def test_progress_logs_partial_heartbeat(client: httpx.Client) -> None:
    job = active_job(client, "rj-prog")
    jid = job["id"]
    data(client.post(f"/jobs/{jid}/progress", json={"progress": 40, "message": "reading"}))
    assert data(client.get(f"/jobs/{jid}/progress")) == [40, "reading"]
    data(client.post(f"/jobs/{jid}/logs", json={"message": "hello", "level": "warn"}))
    (entry,) = data(client.get(f"/jobs/{jid}/logs"))
    assert (entry["message"], entry["level"]) == ("hello", "warn")
    assert data(client.post(f"/jobs/{jid}/partial", json={"data": [1], "index": 0})) is None
    assert data(client.post(f"/jobs/{jid}/heartbeat")) is None
    assert error(client.post(f"/jobs/{jid}/progress", json={}), 422).startswith("Invalid: ")


def test_priority_update_and_patch_alias(client: httpx.Client) -> None:
    job = data(client.post("/queues/rj-upd/jobs", json={"data": 1}))
    jid = job["id"]
    data(client.post(f"/jobs/{jid}/priority", json={"priority": 9}))
    data(client.post(f"/jobs/{jid}/update", json={"data": {"v": 2}}))
    got = data(client.get(f"/jobs/{jid}"))
    assert (got["priority"], got["data"]) == (9, {"v": 2})
    data(client.patch(f"/jobs/{jid}", json={"data": {"v": 3}}))
    assert data(client.get(f"/jobs/{jid}"))["data"] == {"v": 3}


def test_cancel_promote_discard_move_to_delayed(client: httpx.Client) -> None:
    delayed = data(client.post("/queues/rj-mgmt/jobs", json={"data": 1, "delay": 600_000}))
    assert data(client.get(f"/jobs/{delayed['id']}/state")) == "delayed"
    data(client.post(f"/jobs/{delayed['id']}/promote"))
    assert data(client.get(f"/jobs/{delayed['id']}/state")) == "waiting"
    data(client.post(f"/jobs/{delayed['id']}/cancel"))
    assert data(client.get(f"/jobs/{delayed['id']}/state")) == "unknown"
    job = active_job(client, "rj-mgmt")
    data(client.post(f"/jobs/{job['id']}/move-to-delayed", json={"delay": 600_000}))
    assert data(client.get(f"/jobs/{job['id']}/state")) == "delayed"
    data(client.post(f"/jobs/{job['id']}/discard"))
    assert data(client.get(f"/jobs/{job['id']}/state")) == "failed"
    again = active_job(client, "rj-mgmt")
    data(client.post(f"/jobs/{again['id']}/delay", json={"delay": 600_000}))  # TS alias
    assert data(client.get(f"/jobs/{again['id']}/state")) == "delayed"


def test_wait_returns_the_result_or_times_out(client: httpx.Client) -> None:
    job = active_job(client, "rj-wait")
    data(client.post(f"/jobs/{job['id']}/ack", json={"result": 42}))
    assert data(client.get(f"/jobs/{job['id']}/wait")) == 42
    other = data(client.post("/queues/rj-wait/jobs", json={"data": 1}))
    text = error(client.get(f"/jobs/{other['id']}/wait", params={"timeout": 50}))
    assert text == f"Timeout waiting for job {other['id']} after 50ms"


def test_list_jobs_by_queue_and_state(client: httpx.Client) -> None:
    ids = [data(client.post("/queues/rj-list/jobs", json={"data": i}))["id"] for i in range(3)]
    listed = data(client.get("/jobs", params={"queue": "rj-list", "state": "waiting"}))
    assert [j["id"] for j in listed] == sorted(ids, reverse=True)
    assert all(j["state"] == "waiting" for j in listed)
    page = data(client.get("/jobs", params={"queue": "rj-list", "limit": 1, "offset": 1}))
    assert [j["id"] for j in page] == [sorted(ids)[1]]


def test_ack_batch_and_ts_alias(client: httpx.Client) -> None:
    for i in range(3):
        data(client.post("/queues/rj-ackb/jobs", json={"data": i}))
    jobs = data(client.get("/queues/rj-ackb/jobs", params={"count": 3, "timeout": 1000}))
    ids = [j["id"] for j in jobs]
    assert data(client.post("/jobs/ack-batch", json={"ids": ids[:2]})) == 2
    assert data(client.post("/jobs/ack/batch", json={"ids": [*ids[2:], 999999999]})) == 1
    assert all(data(client.get(f"/jobs/{i}/state")) == "completed" for i in ids)


def test_custom_id_lookup(client: httpx.Client) -> None:
    job = data(client.post("/queues/rj-custom/jobs", json={"data": 1, "job_id": "order-7"}))
    found = data(client.get("/jobs/custom/order-7"))
    assert (found["job"]["id"], found["state"]) == (job["id"], "waiting")
    assert data(client.get("/jobs/custom/none-such")) == {"job": None, "state": "unknown"}


def test_children_of_a_non_parent(client: httpx.Client) -> None:
    assert error(client.get("/jobs/999999999/children")) == "Parent job 999999999 not found"
