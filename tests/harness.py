"""Start and drive a real flashQ server (all its processes) for end-to-end and chaos tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flashq.client.blocking import BlockingClient
from flashq.errors import AuthenticationError, UnavailableError

READY = b"flashq acceptor listening on"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """`flashq serve` as a child process; its output is collected for diagnostics."""

    def __init__(
        self,
        data_dir: Path,
        *,
        shard_procs: int = 2,
        storage: str = "memory",
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.shard_procs = shard_procs
        self.args = [
            sys.executable, "-m", "flashq", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--shards-procs", str(shard_procs),
            "--storage", storage, "--data-dir", str(data_dir), *(extra or []),
        ]  # fmt: skip
        base = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKENS", "TCP_PORT")}
        self.env = {**base, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = bytearray()
        self._ready = threading.Event()
        self._ready_count = 0
        self._pump_thread: threading.Thread | None = None

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        self._ready.clear()
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env
        )
        self._pump_thread = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self._pump_thread.start()
        self.wait_ready(timeout_s)
        return self

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output += line
            if READY in line:
                self._ready_count += 1
                self._ready.set()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        if not self._ready.wait(timeout_s):
            raise RuntimeError("server not ready:\n" + self.output.decode(errors="replace"))
        # Readiness of the acceptor means its links are up; make sure it answers.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with self.client() as c:
                    c.call("PING")
                return
            except AuthenticationError:
                return  # it answered: auth is on
            except (OSError, UnavailableError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def wait_ready_again(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until the acceptor has announced readiness `count` times in total."""
        deadline = time.monotonic() + timeout_s
        while self._ready_count < count:
            if time.monotonic() > deadline:
                raise RuntimeError("acceptor did not come back:\n" + self.log())
            time.sleep(0.02)
        self.wait_ready(timeout_s)

    def client(self, **kwargs: Any) -> BlockingClient:
        return BlockingClient("127.0.0.1", self.port, **kwargs)

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def children(self) -> dict[str, int]:
        """Role title -> pid of the supervisor's live children (from their `ps` titles)."""
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        result: dict[str, int] = {}
        for line in out.splitlines():
            pid, _, title = line.strip().partition(" ")
            if title.startswith("flashq: "):
                result[title.removeprefix("flashq: ").strip()] = int(pid)
        return result

    def wait_children(self, expected: int, timeout_s: float = 30.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            kids = self.children()
            if len(kids) >= expected:
                return kids
            if time.monotonic() > deadline:
                raise RuntimeError(f"children: {kids}\n{self.log()}")
            time.sleep(0.05)

    def kill_child(self, role: str) -> int:
        pid = self.children()[role]
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout_s: float = 30.0) -> int:
        """Graceful stop (SIGTERM); returns the supervisor's exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise
        self._close_pipe()
        return code

    def _close_pipe(self) -> None:
        """Close our end of the output pipe once the pump has read it to EOF (no warning
        about an unclosed pipe at interpreter exit)."""
        if self._pump_thread is not None:
            self._pump_thread.join(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill_all(self) -> None:
        """SIGKILL the supervisor and every child at once (power-cut style, minus the disk)."""
        if self.proc is None:
            return
        pids = list(self.children().values())
        for pid in [self.proc.pid, *pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self._close_pipe()
        deadline = time.monotonic() + 10
        for pid in pids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    def log(self) -> str:
        return self.output.decode(errors="replace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped between the checks
        return False


def read_replies(sock: socket.socket, n: int, timeout_s: float = 10.0) -> Iterator[dict[str, Any]]:
    """Read exactly n JSON-line replies from a raw socket."""
    import orjson

    sock.settimeout(timeout_s)
    buf = b""
    got = 0
    while got < n:
        while b"\n" in buf and got < n:
            line, buf = buf.split(b"\n", 1)
            got += 1
            yield orjson.loads(line)
        if got < n:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            buf += data
