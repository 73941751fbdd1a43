"""Webhook routes (PROTOCOL §5.4, §5.8): register, list, delete, and the incoming hook."""

from __future__ import annotations

from typing import Any

from flashq.server.http.api_queues import push_job
from flashq.server.http.context import wall_ms
from flashq.server.http.endpoints import ApiGroup, Call, CommandFailed
from flashq.server.http.webhooks import public_view

api = ApiGroup("Webhooks")


@api.route("GET", "/webhooks", "List webhooks (secrets masked)", returns="[WebhookConfig]")
async def list_webhooks(call: Call) -> Any:
    await call.ctx.webhooks.wait_loaded()
    return [public_view(w) for w in call.ctx.webhooks.webhooks]


@api.route(
    "POST", "/webhooks", "Register a webhook",
    body='{"url": str, "events": ["completed" | "job.completed" | "*", …], "queue": str?, '
         '"secret": str?}',
    returns='"wh_<n>"',
)  # fmt: skip
async def create_webhook(call: Call) -> Any:
    webhook_id, error = await call.ctx.webhooks.register(await call.body(), wall_ms())
    if error is not None:
        raise CommandFailed(error)
    return webhook_id


@api.route("DELETE", "/webhooks/{id}", "Delete a webhook", returns="bool (existed)")
async def delete_webhook(call: Call) -> Any:
    existed, error = await call.ctx.webhooks.delete(call.path("id"))
    if error is not None:
        raise CommandFailed(error)
    return existed


@api.route("POST", "/webhooks/incoming/{q}", "Push the request body as a job's data",
           command="PUSH", body="any JSON (becomes `data`)", returns="Job")  # fmt: skip
async def incoming(call: Call) -> Any:
    # Upstream leaves this route unauthenticated ⚠; here it needs a token like the others.
    return await push_job(call, call.path("q"), {"data": await call.json()})
