"""Protocol conformance through the real server: authentication (§1.8) with tokens configured.

The server runs with ``AUTH_TOKENS="s3cret, other"``. See `test_conformance` for the
conventions (★ / §6.6 / xfail policy); AUTH with auth disabled is checked there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_conformance import MsgWire, Wire, serve_module
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_module(
        tmp_path_factory, "conformance-auth", env={"AUTH_TOKENS": "s3cret, other"}
    )


def test_commands_refused_before_auth_with_reqid(wire: Wire) -> None:
    """ERR("Authentication required") carries the reqId; nothing is executed."""
    for cmd, fields in (
        ("PUSH", {"queue": "auth-q", "data": 1}),
        ("STATS", {}),
        ("GETJOBS", {}),
        ("FLOW", {"queue": "auth-q", "data": 1, "children": [{"queue": "auth-c"}]}),
        ("CRON", {"name": "c", "queue": "auth-q", "repeat_every": 1000}),
        ("KVSET", {"key": "k", "value": 1}),
        ("PING", {}),  # ours: PING needs auth too (upstream does not know PING)
    ):
        assert wire.error(cmd, **fields) == "Authentication required", cmd
    assert wire.ok("AUTH", token="s3cret") == {"ok": True}
    assert wire.ok("COUNT", queue="auth-q") == {"ok": True, "count": 0}
    assert wire.ok("KVGET", key="k") == {"ok": True, "value": None}
    assert wire.ok("CRONLIST") == {"ok": True, "crons": []}


def test_wrong_token_keeps_connection_and_earlier_auth(wire: Wire) -> None:
    assert wire.error("AUTH", token="wrong") == "Invalid token"
    assert wire.error("PUSH", queue="auth-q2", data=1) == "Authentication required"
    assert wire.ok("AUTH", token="s3cret") == {"ok": True}
    assert wire.error("AUTH", token="wrong") == "Invalid token"
    wire.push("auth-q2", 1)  # still authenticated
    assert wire.ok("AUTH", token="s3cret") == {"ok": True}  # re-AUTH allowed


def test_tokens_are_trimmed(wire: Wire) -> None:
    """Ours trims AUTH_TOKENS entries (upstream ⚠ keeps " other" with its space)."""
    assert wire.ok("AUTH", token="other") == {"ok": True}
    assert wire.ok("PING") == {"ok": True, "pong": True}


def test_auth_in_msgpack_mode(srv: ServerProcess) -> None:
    with srv.connect() as sock:
        m = MsgWire(sock)
        assert m.request("STATS") == {"ok": False, "error": "Authentication required"}
        assert m.request("AUTH", token="nope") == {"ok": False, "error": "Invalid token"}
        assert m.request("AUTH", token="s3cret") == {"ok": True}
        assert m.request("ISPAUSED", queue="auth-m") == {"ok": True, "paused": False}


def test_framing_errors_before_auth_are_parse_errors(wire: Wire) -> None:
    wire.send_raw(b'{"cmd":"PUSH","reqId":"x",\n')
    reply = wire.read()
    assert reply["reqId"] == "x"
    assert reply["error"].startswith("Invalid: ")
    assert wire.request("AUTH")["error"].startswith("Invalid: ")  # token is required


def test_parse_errors_before_auth_stay_parse_errors(wire: Wire) -> None:
    assert wire.request("PUSH", queue="auth-q")["error"].startswith("Invalid: ")  # no data
    assert wire.request("push", queue="q", data=1)["error"] == "Invalid: unknown command: push"
