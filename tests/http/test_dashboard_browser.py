"""The dashboard in a real headless Chromium: the page renders live queue data from the server.

`make test` installs Debian's chromium first (`make browser`); a machine without any Chromium
fails here with that hint rather than skipping, so a missing browser is never mistaken for a
passing dashboard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.http.conftest import TOKEN, HttpServer

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no Chromium found: run `make browser` (apt-get install chromium)")


def chromium(url: str, tmp_path: Path, *args: str) -> str:
    """Load `url` headless and return stdout (the DOM with --dump-dom)."""
    command = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
        # Virtual time runs the page's timers fast; network fetches still complete first.
        "--virtual-time-budget=3000", "--window-size=1440,1000", *args, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def queue_row(dom: str, queue: str) -> list[str]:
    """The cells of `queue`'s row in the queues table, as text."""
    table = re.search(r'<table id="queues".*?</table>', dom, re.S)
    assert table is not None, dom[:2000]
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(), re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells and cells[0] == queue:
            return cells
    raise AssertionError(f"{queue} not in the queues table: {table.group()}")


def test_dashboard_shows_live_queue_counts(api: HttpServer, tmp_path: Path) -> None:
    # Given 3 waiting jobs, 1 active and 1 dead-lettered in one queue, pushed over TCP,
    for i in range(4):
        api.tcp({"cmd": "PUSH", "queue": "dash-live", "data": {"i": i}})
    api.tcp({"cmd": "PUSH", "queue": "dash-live", "data": "bad", "max_attempts": 1,
             "priority": 9})  # fmt: skip
    (pull,) = api.tcp({"cmd": "PULLB", "queue": "dash-live", "count": 2, "timeout": 1000})
    api.tcp({"cmd": "FAIL", "id": pull["jobs"][0]["id"], "error": "boom"})
    # when the dashboard loads,
    dom = chromium(api.base + "/dashboard", tmp_path, "--dump-dom")
    # then its queues table shows them: waiting 3, active 1, delayed 0, completed 0, failed 1.
    cells = queue_row(dom, "dash-live")
    assert cells[1:6] == ["3", "1", "0", "0", "1"]
    assert "running" in cells[7]
    # The live WebSocket (/ws/dashboard) connected.
    assert '<div id="conn" class="pill pill-live"' in dom
    # The shard processes table lists both processes as up.
    shards = re.search(r'<table id="shards".*?</table>', dom, re.S)
    assert shards is not None
    assert shards.group().count(">up<") == 2
    # The job browser can be deep-linked to the queue's dead letters.
    failed = chromium(api.base + "/dashboard#queue=dash-live&state=failed", tmp_path, "--dump-dom")
    jobs = re.search(r'<table id="jobs".*?</table>', failed, re.S)
    assert jobs is not None
    assert f"#{pull['jobs'][0]['id']}" in jobs.group()
    assert '"bad"' in jobs.group()


def test_dashboard_with_auth_uses_the_token(secured: HttpServer, tmp_path: Path) -> None:
    secured.tcp({"cmd": "PUSH", "queue": "dash-auth", "data": 1})
    locked = chromium(secured.base + "/dashboard", tmp_path, "--dump-dom")
    assert 'id="login" class="modal"' in locked  # asks for the token
    dom = chromium(f"{secured.base}/dashboard#token={TOKEN}", tmp_path, "--dump-dom")
    assert queue_row(dom, "dash-auth")[1] == "1"
    assert 'id="login" class="modal hidden"' in dom


def test_dashboard_screenshot(api: HttpServer, tmp_path: Path) -> None:
    api.tcp({"cmd": "PUSH", "queue": "dash-shot", "data": 1})
    png = tmp_path / "dashboard.png"
    chromium(api.base + "/dashboard", tmp_path, f"--screenshot={png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
