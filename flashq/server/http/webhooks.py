"""Webhooks (PROTOCOL §5.8): registrations kept in the KV store, deliveries from a bounded queue.

The list of webhooks is one KV value (`_flashq:webhooks`), written through the router like
any client's KVSET, so it is persisted by the shard that owns the key and survives restarts
of the acceptor and of the whole server. Ids come from KVINCR on `_flashq:webhook_seq`.

Every job event passes `on_event` (a hub listener, synchronous): matching webhooks get one
delivery each on a bounded channel; when the channel is full the delivery is dropped and
counted rather than letting a dead receiver grow the acceptor's memory. A few worker tasks
POST the signed body with a timeout, retry with exponential backoff, and consult a per-URL
circuit breaker (`circuit.py`) so a receiver that keeps failing costs nothing while open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import httpx
import orjson
import trio

from flashq.server.http.circuit import CircuitBreaker
from flashq.server.http.webhook_urls import blocked_ip, webhook_url_error

log = logging.getLogger("flashq.http.webhooks")

STORE_KEY: Final = "_flashq:webhooks"
SEQ_KEY: Final = "_flashq:webhook_seq"
SIGNATURE_HEADER: Final = "X-FlashQ-Signature"
#: Deliveries waiting for a worker; beyond this they are dropped (and counted).
QUEUE_SIZE: Final = 10_000
WORKERS: Final = 8
TIMEOUT_S: Final = 10.0
#: Pause before the 2nd and 3rd attempt; a delivery is tried at most len + 1 times.
RETRY_DELAYS_S: Final = (1.0, 4.0)

Webhook = dict[str, Any]
Delivery = tuple[Webhook, bytes, str]
Execute = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def matches(webhook: Webhook, event: dict[str, Any]) -> bool:
    """`events` holds the bare type, `job.<type>` (★ upstream's docs' spelling) or `*`."""
    queue = webhook.get("queue")
    if queue is not None and queue != event.get("queue"):
        return False
    kind = event.get("event_type")
    for name in webhook.get("events") or ():
        if name == "*" or name == kind or name == f"job.{kind}":
            return True
    return False


def delivery_body(event: dict[str, Any]) -> bytes:
    """Upstream's body: compact JSON, keys sorted, `data`/`error` null when absent."""
    body = {
        "data": event.get("data"),
        "error": event.get("error"),
        "event": event.get("event_type"),
        "job_id": event.get("job_id"),
        "queue": event.get("queue"),
        "timestamp": event.get("timestamp"),
    }
    if event.get("progress") is not None:
        body["progress"] = event["progress"]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def signature(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the exact body bytes, keyed by the secret's UTF-8."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def public_view(webhook: Webhook) -> Webhook:
    """What GET /webhooks shows: the secret masked (upstream lists it in clear ⚠)."""
    return {**webhook, "secret": None if webhook.get("secret") is None else "********"}


def registration_error(body: dict[str, Any]) -> str | None:
    """Type errors of a POST /webhooks body, in the validator's `Invalid: …` form."""
    if not isinstance(body.get("url"), str):
        return "Invalid: missing field `url`"
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return "Invalid: `events` must be a list of strings"
    for name in ("queue", "secret"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"Invalid: `{name}` must be a string"
    return None


@attrs.define(eq=False)
class WebhookService:
    execute: Execute  # runs one client command (Router.execute)
    allow_private: bool = False
    retry_delays_s: Sequence[float] = RETRY_DELAYS_S
    timeout_s: float = TIMEOUT_S
    webhooks: list[Webhook] = attrs.field(factory=list)
    breaker: CircuitBreaker = attrs.field(factory=CircuitBreaker)
    counters: dict[str, int] = attrs.field(
        factory=lambda: {"delivered": 0, "failed": 0, "retried": 0, "skipped": 0, "dropped": 0}
    )
    loaded: trio.Event = attrs.field(factory=trio.Event)
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _send: trio.MemorySendChannel[Delivery] | None = None
    #: Told whether any webhook is registered (the acceptor asks for job events only then).
    on_change: Callable[[bool], None] | None = None

    def _set(self, webhooks: list[Webhook]) -> None:
        self.webhooks = webhooks
        if self.on_change is not None:
            self.on_change(bool(webhooks))

    # -- registry --------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the stored list, retrying while the owning shard process is not up."""
        delay = 0.1
        while True:
            reply = await self.execute({"cmd": "KVGET", "key": STORE_KEY})
            if reply.get("ok"):
                value = reply.get("value")
                self._set([w for w in value or [] if isinstance(w, dict)])
                self.loaded.set()
                log.info("%d webhooks loaded", len(self.webhooks))
                return
            log.warning("loading webhooks failed (%s); retrying", reply.get("error"))
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def wait_loaded(self, timeout_s: float = 10.0) -> None:
        """Wait until the stored list is read (right after startup), so no caller sees a
        half-started registry; `trio.TooSlowError` if the store stays unreachable."""
        with trio.fail_after(timeout_s):
            await self.loaded.wait()

    async def _store(self, webhooks: list[Webhook]) -> str | None:
        reply = await self.execute({"cmd": "KVSET", "key": STORE_KEY, "value": webhooks})
        if reply.get("ok"):
            self._set(webhooks)
            return None
        return str(reply.get("error"))

    async def register(self, body: dict[str, Any], now_ms: int) -> tuple[str | None, str | None]:
        """Add a webhook; (its id, None) or (None, error text)."""
        error = registration_error(body)
        if error is None:
            error = webhook_url_error(body["url"], allow_private=self.allow_private)
        if error is not None:
            return None, error
        await self.wait_loaded()
        async with self._lock:
            seq = await self.execute({"cmd": "KVINCR", "key": SEQ_KEY, "by": 1})
            if not seq.get("ok"):
                return None, str(seq.get("error"))
            webhook: Webhook = {
                "id": f"wh_{seq['value']}",
                "url": body["url"].strip(),
                "events": list(body["events"]),
                "queue": body.get("queue"),
                "secret": body.get("secret"),
                "created_at": now_ms,
            }
            error = await self._store([*self.webhooks, webhook])
        return (None, error) if error else (webhook["id"], None)

    async def delete(self, webhook_id: str) -> tuple[bool, str | None]:
        await self.wait_loaded()
        async with self._lock:
            kept = [w for w in self.webhooks if w.get("id") != webhook_id]
            if len(kept) == len(self.webhooks):
                return False, None
            error = await self._store(kept)
        return error is None, error

    # -- delivery --------------------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        """Hub listener: queue one delivery per matching webhook; never blocks, never raises
        (it runs inside the shard link's reader)."""
        if self._send is None or not self.webhooks:
            return
        try:
            self._enqueue(event)
        except Exception:
            log.exception("webhook delivery not queued for event %r", event.get("event_type"))

    def _enqueue(self, event: dict[str, Any]) -> None:
        assert self._send is not None
        body: bytes | None = None
        for webhook in self.webhooks:
            if not matches(webhook, event):
                continue
            body = body or delivery_body(event)
            try:
                self._send.send_nowait((webhook, body, str(event.get("event_type"))))
            except trio.WouldBlock:
                self.counters["dropped"] += 1
                if self.counters["dropped"] % 1000 == 1:
                    log.warning("webhook queue full: %d deliveries dropped so far",
                                self.counters["dropped"])  # fmt: skip

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load the registry and run the delivery workers until cancelled."""
        send, receive = trio.open_memory_channel[Delivery](QUEUE_SIZE)
        self._send = send
        client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        async with client, trio.open_nursery() as nursery:
            nursery.start_soon(self.load)
            for _ in range(WORKERS):
                nursery.start_soon(self._worker, receive.clone(), client)
            task_status.started()

    async def _worker(
        self, receive: trio.MemoryReceiveChannel[Delivery], client: httpx.AsyncClient
    ) -> None:
        async for webhook, body, kind in receive:
            await self.deliver(client, webhook, body, kind)

    async def deliver(
        self, client: httpx.AsyncClient, webhook: Webhook, body: bytes, kind: str
    ) -> bool:
        """POST one delivery, retrying; True once a receiver answered 2xx."""
        url = webhook["url"]
        headers = {"Content-Type": "application/json", "User-Agent": "flashq-webhook",
                   "X-FlashQ-Event": kind}  # fmt: skip
        if webhook.get("secret"):
            headers[SIGNATURE_HEADER] = signature(webhook["secret"], body)
        for attempt in range(len(self.retry_delays_s) + 1):
            if attempt:
                self.counters["retried"] += 1
                await trio.sleep(self.retry_delays_s[attempt - 1])
            if not self.breaker.allow(url, trio.current_time()):
                self.counters["skipped"] += 1
                return False
            ok = await self._post(client, url, body, headers)
            self.breaker.record(url, ok, trio.current_time())
            if ok:
                self.counters["delivered"] += 1
                return True
        self.counters["failed"] += 1
        return False

    async def _post(
        self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        try:
            if not self.allow_private and await _resolves_privately(url):
                log.warning("webhook %s resolves to a private address; not delivered", url)
                return False
            response = await client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            log.info("webhook %s: %s", url, exc)
            return False
        if 200 <= response.status_code < 300:
            return True
        log.info("webhook %s answered %d", url, response.status_code)
        return False

    def statistics(self) -> dict[str, Any]:
        return {"webhooks": len(self.webhooks), **self.counters,
                "open_circuits": self.breaker.open_count(trio.current_time())}  # fmt: skip


async def _resolves_privately(url: str) -> bool:
    """Delivery-time SSRF check: any resolved address in a blocked range refuses the URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    for info in infos:
        address = str(info[4][0]).split("%")[0]
        if blocked_ip(ipaddress.ip_address(address)):
            return True
    return False
