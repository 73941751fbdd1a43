"""The `flashq` command line against a real server, as a person at a terminal uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.harness import ServerProcess


def flashq(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flashq", *args, "--port", str(srv.port)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_push_pull_ack_stats(server: ServerProcess) -> None:
    pushed = flashq(server, "push", "emails", '{"to": "ada@example.com"}', "--priority", "3")
    assert pushed.returncode == 0, pushed.stderr
    job_id = int(pushed.stdout)
    shown = json.loads(flashq(server, "job", str(job_id)).stdout)
    assert shown["state"] == "waiting"
    assert shown["job"]["priority"] == 3
    pulled = flashq(server, "pull", "emails", "--ack")
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["data"] == {"to": "ada@example.com"}
    stats = json.loads(flashq(server, "stats").stdout)
    assert stats["completed"] == 1
    assert stats["queues"]["emails"]["completed"] == 1


def test_errors_are_reported_not_raised(server: ServerProcess) -> None:
    bad_json = flashq(server, "push", "q", "{nope")
    assert bad_json.returncode == 2
    assert "invalid JSON" in bad_json.stderr
    bad_queue = flashq(server, "push", "bad name!", "1")
    assert bad_queue.returncode == 1
    assert "Queue name must contain only" in bad_queue.stderr
    empty = flashq(server, "pull", "nothing-here", "--timeout", "100")
    assert empty.returncode == 1
    assert "no job" in empty.stderr


def test_help_for_each_command() -> None:
    for cmd in ("serve", "push", "pull", "ack", "job", "stats"):
        out = subprocess.run(
            [sys.executable, "-m", "flashq", cmd, "--help"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "usage: flashq " + cmd in out.stdout


def test_serve_refuses_bad_settings_with_a_message() -> None:
    for args, env, expected in (
        (["--busy-poll-us", "-1"], {}, "busy_poll_us must be between 0 and 100000"),
        (["--shards-procs", "99"], {}, "shard_procs must be between 1 and 32"),
        ([], {"FLASHQ_BUSY_POLL_US": "soon"}, "invalid literal for int()"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "flashq", "serve", *args],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, **env},
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("flashq serve: error:"), done.stderr
        assert expected in done.stderr
        assert "Traceback" not in done.stderr
