"""Server-wide routes (PROTOCOL §5.4): crons, stats and metrics, workers, health, and
`POST /api/command`, the one route that takes any TCP command as its body."""

from __future__ import annotations

import os
from typing import Any

from starlette.responses import Response

from flashq.server.http import prometheus
from flashq.server.http.auth import token_valid
from flashq.server.http.context import wall_ms
from flashq.server.http.endpoints import ApiError, ApiGroup, Call, command, json_response
from flashq.server.http.metrics import latency_by_queue, process_summary

api = ApiGroup("Server")

CRON_BODY = (
    '{"queue": str, "data": any, "schedule": str?, "repeat_every": u64?, "priority": i32?, '
    '"limit": u64?} (schedule or repeat_every)'
)


@api.route("GET", "/crons", "List cron jobs", command="CRONLIST", returns="[CronJob]")
async def list_crons(call: Call) -> Any:
    return (await call.run({"cmd": "CRONLIST"}))["crons"]


@api.route("POST", "/crons/{name}", "Create or replace a cron job", command="CRON",
           body=CRON_BODY)  # fmt: skip
async def put_cron(call: Call) -> Any:
    await call.run(command("CRON", await call.body(), name=call.path("name")))


@api.route("DELETE", "/crons/{name}", "Delete a cron job", command="CRONDELETE",
           returns="bool (existed)")  # fmt: skip
async def delete_cron(call: Call) -> Any:
    reply = await call.execute({"cmd": "CRONDELETE", "name": call.path("name")})
    return bool(reply.get("ok"))


api.alias("PUT", "/crons/{name}", put_cron, "POST /crons/{name}")


@api.route("GET", "/stats", "Global job counts (and per queue)", command="STATS",
           returns="{queued, processing, delayed, dlq, completed, queues}")  # fmt: skip
async def stats(call: Call) -> Any:
    reply = await call.run({"cmd": "STATS"})
    reply.pop("ok", None)
    return reply


@api.route("GET", "/metrics", "Counters, throughput and latency", command="METRICS",
           returns="MetricsData")  # fmt: skip
async def metrics(call: Call) -> Any:
    return (await call.run({"cmd": "METRICS"}))["metrics"]


@api.route("GET", "/metrics/history", "Samples every 5 s, last 60",
           returns="[MetricsHistoryPoint]")  # fmt: skip
async def metrics_history(call: Call) -> Any:
    return list(call.ctx.metrics.history)


@api.route("GET", "/metrics/prometheus", "Prometheus text format", public=True,
           returns="text/plain")  # fmt: skip
async def metrics_prometheus(call: Call) -> Any:
    ctx = call.ctx
    stats_reply, metrics_reply = await ctx.execute_all({"cmd": "STATS"}, {"cmd": "METRICS"})
    procs = await ctx.router.process_stats()
    text = prometheus.render(
        stats_reply,
        metrics_reply.get("metrics") or {},
        len(ctx.workers.live(wall_ms())),
        process_summary(procs, stats_reply.get("queues") or {}),
        latency_by_queue(procs),
        ctx.hub.statistics(),
        ctx.webhooks.statistics(),
    )
    return Response(text, media_type=prometheus.CONTENT_TYPE)


@api.route("GET", "/shards", "Shard processes: load, group commit, storage latency",
           returns="[ShardProcess]")  # fmt: skip
async def shards(call: Call) -> Any:
    stats_reply = await call.execute({"cmd": "STATS"})
    procs = await call.ctx.router.process_stats()
    return process_summary(procs, stats_reply.get("queues") or {})


@api.route("GET", "/workers", "Workers seen in the last 30 s", returns="[WorkerInfo]")
async def workers(call: Call) -> Any:
    return call.ctx.workers.live(wall_ms())


@api.route("POST", "/workers/{id}/heartbeat", "Register or refresh a worker",
           body='{"queues": [str], "concurrency": u32?, "jobs_processed": u64?}')  # fmt: skip
async def worker_heartbeat(call: Call) -> Any:
    body = await call.body()
    queues = body.get("queues") or []
    concurrency = body.get("concurrency") or 1
    processed = body.get("jobs_processed") or 0
    if not (isinstance(queues, list) and all(isinstance(q, str) for q in queues)):
        raise ApiError(422, "Invalid: `queues` must be a list of strings")
    if not (isinstance(concurrency, int) and isinstance(processed, int)):
        raise ApiError(422, "Invalid: `concurrency` and `jobs_processed` must be integers")
    call.ctx.workers.heartbeat(call.path("id"), queues, concurrency, processed, wall_ms())


@api.route("GET", "/health", "Liveness, role and storage", public=True,
           returns="{status, role, uptime_ms, storage, shard_procs, shard_procs_up}")  # fmt: skip
async def health(call: Call) -> Any:
    ctx = call.ctx
    up = sum(1 for lk in ctx.router.links if lk.up)
    return {
        "status": "healthy" if up == len(ctx.router.links) else "degraded",
        "role": "leader",
        "uptime_ms": wall_ms() - ctx.started_ms,
        "storage": ctx.settings.storage,
        "sqlite_enabled": False,
        "shard_procs": len(ctx.router.links),
        "shard_procs_up": up,
        "pid": os.getpid(),
    }


@api.route("POST", "/api/command", "Any TCP command; the reply is the TCP reply",
           body='{"cmd": "PUSH", …fields of PROTOCOL §2}', returns="TCP reply")  # fmt: skip
async def api_command(call: Call) -> Any:
    body = await call.body()
    name = body.get("cmd")
    req_id = body.get("reqId")
    if not isinstance(name, str) or name.startswith("_"):
        reply: dict[str, Any] = {"ok": False, "error": f"Invalid: unknown command: {name}"}
    elif name == "AUTH":
        given = body.get("token")
        good = isinstance(given, str) and token_valid(call.ctx.settings.auth_tokens, given)
        reply = {"ok": True} if good else {"ok": False, "error": "Invalid token"}
    else:
        reply = await call.execute({k: v for k, v in body.items() if k != "reqId"})
    if isinstance(req_id, str):
        reply = {"reqId": req_id, **reply}
    return json_response(reply)
