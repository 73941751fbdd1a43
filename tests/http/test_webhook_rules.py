"""Webhook pieces without a server: URL rules, matching, body, signature, circuit breaker."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from flashq.server.http.circuit import CircuitBreaker
from flashq.server.http.webhook_urls import webhook_url_error
from flashq.server.http.webhooks import (
    delivery_body,
    matches,
    public_view,
    registration_error,
    signature,
)

LOCAL = "Localhost URLs are not allowed for webhooks"
PRIVATE = "Private/internal IP addresses are not allowed: "


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/x", None),
        ("http://93.184.216.34:8080/x", None),
        ("http://[2606:2800:220:1::]/x", None),
        ("nope", "Invalid URL: relative URL without a base"),
        ("http://example.com:99999/", "Invalid URL: Port out of range 0-65535"),
        ("ftp://example.com/", "Invalid scheme 'ftp': only http/https allowed"),
        ("file:///etc/passwd", "Invalid scheme 'file': only http/https allowed"),
        ("http:///path", "URL must have a host"),
        ("http://localhost:8000/", LOCAL),
        ("http://api.localhost/", LOCAL),
        ("http://printer.local/", LOCAL),
        ("http://127.0.0.1/", LOCAL),
        ("http://127.9.9.9/", LOCAL),
        ("http://[::1]/", LOCAL),
        ("http://0.0.0.0/", LOCAL),
        ("http://2130706433/", LOCAL),  # 127.0.0.1 spelled as one number
        ("http://0x7f.1/", LOCAL),
        ("http://10.0.0.5/", PRIVATE + "10.0.0.5"),
        ("http://172.20.1.1/", PRIVATE + "172.20.1.1"),
        ("http://192.168.1.1/", PRIVATE + "192.168.1.1"),
        ("http://169.254.169.254/", PRIVATE + "169.254.169.254"),
        ("http://100.64.0.1/", PRIVATE + "100.64.0.1"),
        ("http://192.0.2.10/", PRIVATE + "192.0.2.10"),
        ("http://255.255.255.255/", PRIVATE + "255.255.255.255"),
        ("http://[fd00::1]/", PRIVATE + "fd00::1"),
        ("http://[fe80::1]/", PRIVATE + "fe80::1"),
        ("http://[::ffff:10.0.0.1]/",
         PRIVATE + "::ffff:a00:1"),
        ("http://db.internal/", "Internal/cloud metadata URLs are not allowed: db.internal"),
        ("http://nas.lan/", "Internal/cloud metadata URLs are not allowed: nas.lan"),
        ("http://svc.ns.svc.cluster.local/", LOCAL),  # *.local comes first
        ("http://a.svc.cluster.local.example.com/",
         "Internal/cloud metadata URLs are not allowed: a.svc.cluster.local.example.com"),
        ("http://metadata.google.internal/",
         "Internal/cloud metadata URLs are not allowed: metadata.google.internal"),
        ("http://metadata.example.com/",
         "Internal/cloud metadata URLs are not allowed: metadata.example.com"),
    ],
)  # fmt: skip
def test_url_rules(url: str, expected: str | None) -> None:
    assert webhook_url_error(url) == expected


def test_test_allowance_keeps_the_syntax_rules() -> None:
    assert webhook_url_error("http://127.0.0.1:9/x", allow_private=True) is None
    assert webhook_url_error("ftp://127.0.0.1/", allow_private=True) == (
        "Invalid scheme 'ftp': only http/https allowed"
    )


@pytest.mark.parametrize(
    ("events", "queue", "event", "fires"),
    [
        (["completed"], None, {"event_type": "completed", "queue": "a"}, True),
        (["job.completed"], None, {"event_type": "completed", "queue": "a"}, True),
        (["*"], "a", {"event_type": "pushed", "queue": "a"}, True),
        (["*"], "b", {"event_type": "pushed", "queue": "a"}, False),
        (["failed"], None, {"event_type": "completed", "queue": "a"}, False),
        (["job.*"], None, {"event_type": "completed", "queue": "a"}, False),
        ([], None, {"event_type": "completed", "queue": "a"}, False),
    ],
)  # fmt: skip
def test_matching(events: list[str], queue: str | None, event: dict[str, str], fires: bool) -> None:
    assert matches({"events": events, "queue": queue}, event) is fires


def test_body_is_sorted_compact_with_nulls() -> None:
    body = delivery_body({"event_type": "failed", "queue": "q", "job_id": 7,
                          "timestamp": 1700000000000, "error": "boom"})  # fmt: skip
    assert body == (b'{"data":null,"error":"boom","event":"failed","job_id":7,"queue":"q",'
                    b'"timestamp":1700000000000}')  # fmt: skip
    with_progress = orjson.loads(delivery_body({"event_type": "progress", "progress": 50}))
    assert with_progress["progress"] == 50


def test_signature_is_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    assert signature("k", body) == hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) != signature("k2", body)


def test_public_view_masks_the_secret() -> None:
    assert public_view({"id": "wh_1", "secret": "s"})["secret"] == "********"
    assert public_view({"id": "wh_1", "secret": None})["secret"] is None


def test_registration_types() -> None:
    assert registration_error({"url": "u", "events": ["*"]}) is None
    assert registration_error({"events": ["*"]}) == "Invalid: missing field `url`"
    assert registration_error({"url": "u", "events": [1]}) is not None
    assert registration_error({"url": "u", "events": ["*"], "queue": 5}) is not None


def test_breaker_opens_after_five_failures_and_half_opens_after_30s() -> None:
    b = CircuitBreaker()
    url = "https://x.example/h"
    for t in range(4):
        b.record(url, False, float(t))
    assert b.state(url, 4.0) == "closed"
    b.record(url, False, 4.0)  # 5th consecutive failure at t=4
    assert not b.allow(url, 4.0)
    assert not b.allow(url, 33.9)
    assert b.open_count(10.0) == 1
    assert b.state(url, 34.0) == "half-open"  # 30 s after opening
    assert b.allow(url, 34.0)
    b.record(url, True, 34.0)
    assert b.state(url, 34.5) == "half-open"  # one success is not enough
    b.record(url, True, 35.0)
    assert b.state(url, 35.0) == "closed"
    assert b.open_count(35.0) == 0


def test_breaker_failure_while_half_open_reopens() -> None:
    b = CircuitBreaker()
    for _ in range(5):
        b.record("u", False, 0.0)
    b.record("u", False, 31.0)
    assert b.state("u", 60.9) == "open"
    assert b.state("u", 61.0) == "half-open"


def test_breaker_success_resets_the_failure_count() -> None:
    b = CircuitBreaker()
    for _ in range(4):
        b.record("u", False, 0.0)
    b.record("u", True, 0.0)
    for _ in range(4):
        b.record("u", False, 0.0)
    assert b.state("u", 0.0) == "closed"
