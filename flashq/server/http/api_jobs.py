"""Job routes (PROTOCOL §5.3) and the TypeScript SDK's spellings of them (§6.3)."""

from __future__ import annotations

from typing import Any, Final

from flashq.server.http.endpoints import ApiGroup, Call, command

api = ApiGroup("Jobs")

#: GET /jobs/{id}/wait default, as WAITJOB's.
WAIT_TIMEOUT_MS: Final = 30_000


@api.route("GET", "/jobs", "Browse jobs, newest first", command="GETJOBS",
           query="queue, state, limit (100, max 1000), offset (0)",
           returns="[JobWithState]")  # fmt: skip
async def list_jobs(call: Call) -> Any:
    cmd: dict[str, Any] = {
        "cmd": "GETJOBS",
        "limit": call.query_int("limit", 100),
        "offset": call.query_int("offset", 0),
    }
    for name in ("queue", "state"):
        value = call.query(name)
        if value:
            cmd[name] = value
    return (await call.run(cmd))["jobs"]


@api.route("POST", "/jobs/ack-batch", "Acknowledge many jobs", command="ACKB",
           body='{"ids": [u64]}', returns="count")  # fmt: skip
async def ack_batch(call: Call) -> Any:
    # Our ACKB publishes `completed` events and advances flows like one ACK per id.
    reply = await call.run(command("ACKB", await call.body()))
    return int(reply.get("count", (reply.get("ids") or [0])[0]))


@api.route("GET", "/jobs/custom/{custom_id}", "Find a job by its custom id",
           command="GETJOBBYCUSTOMID", returns="{job: Job|null, state}")  # fmt: skip
async def by_custom_id(call: Call) -> Any:
    reply = await call.run({"cmd": "GETJOBBYCUSTOMID", "job_id": call.path("custom_id")})
    return {"job": reply["job"], "state": reply["state"]}


@api.route("GET", "/jobs/{id}", "A job with its state and result", command="GETJOB",
           returns="Job + state + result")  # fmt: skip
async def get_job(call: Call) -> Any:
    job_id = call.path_id()
    got = await call.run({"cmd": "GETJOB", "id": job_id})
    result = (await call.run({"cmd": "GETRESULT", "id": job_id}))["result"]
    job = got["job"]
    if job is None:
        return {"state": got["state"], "result": result}
    return {**job, "state": got["state"], "result": result}


def _get(suffix: str, cmd: str, summary: str, field: str, returns: str) -> None:
    async def handler(call: Call) -> Any:
        return (await call.run({"cmd": cmd, "id": call.path_id()}))[field]

    api.route("GET", "/jobs/{id}" + suffix, summary, command=cmd, returns=returns)(handler)


_get("/state", "GETSTATE", "The job's state", "state", "State")
_get("/result", "GETRESULT", "The job's result", "result", "any|null")
_get("/logs", "GETLOGS", "The job's log entries", "logs", "[JobLogEntry]")


def _post(suffix: str, cmd: str, summary: str, body: str | None = None) -> None:
    async def handler(call: Call) -> Any:
        fields = await call.body() if body is not None else {}
        await call.run(command(cmd, fields, id=call.path_id()))

    api.route("POST", "/jobs/{id}" + suffix, summary, command=cmd, body=body)(handler)


_post("/ack", "ACK", "Acknowledge an active job", '{"result": any?}')
_post("/fail", "FAIL", "Fail an active job (retry or DLQ)", '{"error": str?}')
_post("/cancel", "CANCEL", "Cancel a job that has not finished")
_post("/promote", "PROMOTE", "Make a delayed job ready now")
_post("/discard", "DISCARD", "Move a job to the DLQ now")
_post("/progress", "PROGRESS", "Report progress of an active job",
      '{"progress": 0-100, "message": str?}')  # fmt: skip
_post("/partial", "PARTIAL", "Publish a partial result", '{"data": any, "index": u32?}')
_post("/logs", "LOG", "Append a log entry", '{"message": str, "level": str?}')
_post("/priority", "CHANGEPRIORITY", "Change the priority", '{"priority": i32}')
_post("/move-to-delayed", "MOVETODELAYED", "Put an active job back, delayed",
      '{"delay": u64}')  # fmt: skip
_post("/update", "UPDATEJOB", "Replace the job's data", '{"data": any}')
_post("/heartbeat", "HEARTBEAT", "Refresh an active job's stall timer")


@api.route("GET", "/jobs/{id}/progress", "Progress of an active job", command="GETPROGRESS",
           returns="[progress, message|null]")  # fmt: skip
async def get_progress(call: Call) -> Any:
    info = (await call.run({"cmd": "GETPROGRESS", "id": call.path_id()}))["progress"]
    return [info["progress"], info.get("message")]


@api.route("GET", "/jobs/{id}/wait", "Wait for the job to finish; its result",
           command="WAITJOB", query="timeout (ms, default 30000)", returns="any|null")  # fmt: skip
async def wait(call: Call) -> Any:
    timeout = call.query_int("timeout", WAIT_TIMEOUT_MS)
    reply = await call.run({"cmd": "WAITJOB", "id": call.path_id(), "timeout": timeout})
    return reply.get("result")


@api.route("GET", "/jobs/{id}/children", "A flow parent's children", command="GETCHILDREN",
           returns="{children: [id], completed, total}")  # fmt: skip
async def children(call: Call) -> Any:
    reply = await call.run({"cmd": "GETCHILDREN", "parent_id": call.path_id()})
    ids = reply.get("children_ids")
    if ids is None:
        ids = [j["id"] for j in reply.get("children", [])]
    return {"children": ids, "completed": reply["completed"], "total": reply["total"]}


async def _update_alias(call: Call) -> Any:
    await call.run(command("UPDATEJOB", await call.body(), id=call.path_id()))


async def _delay_alias(call: Call) -> Any:
    await call.run(command("MOVETODELAYED", await call.body(), id=call.path_id()))


api.alias("PATCH", "/jobs/{id}", _update_alias, "POST /jobs/{id}/update")
api.alias("POST", "/jobs/{id}/delay", _delay_alias, "POST /jobs/{id}/move-to-delayed")
api.alias("POST", "/jobs/ack/batch", ack_batch, "POST /jobs/ack-batch")
