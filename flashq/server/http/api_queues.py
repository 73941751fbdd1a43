"""Queue routes (PROTOCOL §5.2): each one command through the router, reply unwrapped."""

from __future__ import annotations

from typing import Any, Final

from flashq.server.http.endpoints import ApiError, ApiGroup, Call, command

api = ApiGroup("Queues")

#: GET /queues/{q}/jobs waits at most this long by default (upstream waits forever ⚠).
PULL_TIMEOUT_MS: Final = 30_000
#: Upper bound on ?timeout= for pulls, so an HTTP request cannot hold a waiter for hours.
MAX_PULL_TIMEOUT_MS: Final = 300_000
#: GET /queues/{q}/dlq default (upstream's HTTP default of 1 ⚠ is taken from TCP's 100).
DLQ_COUNT: Final = 100

JOB_INPUT = (
    "JobInput: the PUSH fields of PROTOCOL §2.1 minus `queue`; `data` optional (null): "
    "priority, delay, ttl, timeout, max_attempts, backoff, unique_key, depends_on, tags, lifo, "
    "remove_on_complete, remove_on_fail, stall_timeout, debounce_id, debounce_ttl, job_id, "
    "keep_completed_age, keep_completed_count, group_id"
)


async def push_job(call: Call, queue: str, body: dict[str, Any]) -> Any:
    """PUSH, then the stored Job (the reply of upstream's route is the full Job)."""
    body.setdefault("data", None)
    reply = await call.run(command("PUSH", body, queue=queue))
    got = await call.execute({"cmd": "GETJOB", "id": reply["id"]})
    return got.get("job") or {"id": reply["id"]}


@api.route("GET", "/queues", "List queues", command="LISTQUEUES", returns="[QueueInfo]")
async def list_queues(call: Call) -> Any:
    return (await call.run({"cmd": "LISTQUEUES"}))["queues"]


@api.route("POST", "/queues/{q}/jobs", "Push a job", command="PUSH", body=JOB_INPUT,
           returns="Job")  # fmt: skip
async def push(call: Call) -> Any:
    return await push_job(call, call.path("q"), await call.body())


@api.route("POST", "/queues/{q}/jobs/batch", "Push up to 1000 jobs", command="PUSHB",
           body='{"jobs": [JobInput]}', returns="[id]")  # fmt: skip
async def push_batch(call: Call) -> Any:
    return (await call.run(command("PUSHB", await call.body(), queue=call.path("q"))))["ids"]


@api.route(
    "GET", "/queues/{q}/jobs", "Pull jobs (waits up to ?timeout= ms, default 30000)",
    command="PULL / PULLB", query="count (default 1), timeout (ms, default 30000)",
    returns="[Job]",
)  # fmt: skip
async def pull(call: Call) -> Any:
    count = call.query_int("count", 1)
    timeout = min(call.query_int("timeout", PULL_TIMEOUT_MS), MAX_PULL_TIMEOUT_MS)
    queue = call.path("q")
    if count == 1:
        job = (await call.run({"cmd": "PULL", "queue": queue, "timeout": timeout}))["job"]
        return [] if job is None else [job]
    reply = await call.run({"cmd": "PULLB", "queue": queue, "count": count, "timeout": timeout})
    return reply["jobs"]


def _simple(method: str, suffix: str, cmd: str, summary: str, field: str | None = None,
            returns: str = "null") -> None:  # fmt: skip
    async def handler(call: Call) -> Any:
        reply = await call.run({"cmd": cmd, "queue": call.path("q")})
        return None if field is None else reply[field]

    api.route(method, "/queues/{q}" + suffix, summary, command=cmd, returns=returns)(handler)


_simple("POST", "/pause", "PAUSE", "Pause a queue")
_simple("POST", "/resume", "RESUME", "Resume a queue")
_simple("GET", "/paused", "ISPAUSED", "Is the queue paused?", "paused", "bool")
_simple("DELETE", "/dlq", "PURGEDLQ", "Purge the dead-letter queue", "count", "count")
_simple("GET", "/count", "COUNT", "Waiting + delayed jobs", "count", "count")
_simple("POST", "/drain", "DRAIN", "Remove waiting and delayed jobs", "count", "count")
_simple("DELETE", "/obliterate", "OBLITERATE", "Remove the queue and all its jobs", "count",
        "count")  # fmt: skip


@api.route("GET", "/queues/{q}/dlq", "Dead-letter jobs, oldest first", command="DLQ",
           query="count (default 100)", returns="[Job]")  # fmt: skip
async def dlq(call: Call) -> Any:
    count = call.query_int("count", DLQ_COUNT)
    return (await call.run({"cmd": "DLQ", "queue": call.path("q"), "count": count}))["jobs"]


def _retried(reply: dict[str, Any]) -> int:
    return int(reply.get("count", (reply.get("ids") or [0])[0]))


@api.route("POST", "/queues/{q}/dlq/retry", "Retry dead-letter jobs (one or all)",
           command="RETRYDLQ", body='{"job_id": u64?}', returns="count")  # fmt: skip
async def retry_dlq(call: Call) -> Any:
    body = await call.body()
    cmd: dict[str, Any] = {"cmd": "RETRYDLQ", "queue": call.path("q")}
    if body.get("job_id") is not None:
        cmd["id"] = body["job_id"]
    return _retried(await call.run(cmd))


async def retry_dlq_one(call: Call) -> Any:
    cmd = {"cmd": "RETRYDLQ", "queue": call.path("q"), "id": call.path_id()}
    return _retried(await call.run(cmd))


@api.route("GET", "/queues/{q}/counts", "Job counts by state", command="GETJOBCOUNTS",
           returns="{waiting, active, delayed, completed, failed}")  # fmt: skip
async def counts(call: Call) -> Any:
    reply = await call.run({"cmd": "GETJOBCOUNTS", "queue": call.path("q")})
    return {k: reply[k] for k in ("waiting", "active", "delayed", "completed", "failed")}


def _limit_routes(suffix: str, set_cmd: str, clear_cmd: str, what: str) -> None:
    async def set_limit(call: Call) -> Any:
        await call.run(command(set_cmd, await call.body(), queue=call.path("q")))

    async def clear_limit(call: Call) -> Any:
        await call.run({"cmd": clear_cmd, "queue": call.path("q")})

    path = "/queues/{q}" + suffix
    api.route("POST", path, f"Set the {what}", command=set_cmd, body='{"limit": u32}')(set_limit)
    api.route("DELETE", path, f"Clear the {what}", command=clear_cmd)(clear_limit)
    if suffix == "/rate-limit":
        api.alias("POST", "/queues/{q}/ratelimit", set_limit, f"POST {path}")
        api.alias("DELETE", "/queues/{q}/ratelimit", clear_limit, f"DELETE {path}")


_limit_routes("/rate-limit", "RATELIMIT", "RATELIMITCLEAR", "rate limit (jobs/s)")
_limit_routes("/concurrency", "SETCONCURRENCY", "CLEARCONCURRENCY", "concurrency limit")


@api.route("POST", "/queues/{q}/clean", "Remove old jobs of one state", command="CLEAN",
           body='{"grace": u64, "state": str, "limit": usize?}', returns="count")  # fmt: skip
async def clean(call: Call) -> Any:
    return (await call.run(command("CLEAN", await call.body(), queue=call.path("q"))))["count"]


@api.route(
    "POST", "/queues/{q}/flow", "Push a parent job and its children", command="FLOW",
    body='{"data": any, "children": [{"queue", "data", "priority"?, "delay"?}], "priority"?}',
    returns="{parent_id, children_ids}",
)  # fmt: skip
async def flow(call: Call) -> Any:
    reply = await call.run(command("FLOW", await call.body(), queue=call.path("q")))
    return {"parent_id": reply["parent_id"], "children_ids": reply["children_ids"]}


async def flow_alias(call: Call) -> Any:
    """POST /flows as the TypeScript SDK sends it: queue and `parent_data` in the body."""
    body = await call.body()
    queue = body.pop("queue", None)
    if not isinstance(queue, str):
        raise ApiError(422, "Invalid: missing field `queue`")
    if "data" not in body:
        body["data"] = body.pop("parent_data", None)
    reply = await call.run(command("FLOW", body, queue=queue))
    return {"parent_id": reply["parent_id"], "children_ids": reply["children_ids"]}


api.alias("POST", "/queues/{q}/dlq/{id}/retry", retry_dlq_one, "POST /queues/{q}/dlq/retry")
api.alias("POST", "/flows", flow_alias, "POST /queues/{q}/flow")
