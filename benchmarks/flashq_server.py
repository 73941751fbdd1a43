"""Start, watch and stop a flashQ server for the benchmarks, and read its processes from /proc.

The server is the default configuration a user gets: `flashq serve` with embedded durable
storage (fsync never) in a fresh data directory. Every number about the server (RSS, CPU
seconds per role) is read from /proc over the supervisor's whole process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
FLASHQ = ROOT / ".venv" / "bin" / "flashq"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, cmd: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """One JSON-lines request on a fresh connection (setup and checks, never timed paths)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(orjson.dumps({**cmd, "reqId": "1"}) + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the reply")
            data += chunk
    reply: dict[str, Any] = orjson.loads(data)
    return reply


# -- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def title(pid: int) -> str:
    """The process title (`flashq: shard 1/2`), from its command line."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return "?"


def role(pid: int) -> str:
    name = title(pid)
    return name.removeprefix("flashq: ") if name.startswith("flashq: ") else name.split(" ")[0]


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError, IndexError):
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return 0.0


def memory_kib(pid: int) -> dict[str, int]:
    """RSS and PSS (shared pages split between the processes sharing them), in KiB."""
    out = {"rss_kib": 0, "pss_kib": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                out[f"{key.lower()}_kib"] = int(value.split()[0])
    return out


def find_pid(comm: str) -> int | None:
    """The first process whose name is `comm` (e.g. redis-server)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == comm:
                    return int(entry.name)
    return None


# -- the server -----------------------------------------------------------------------------


class FlashQServer:
    """One `flashq serve` process tree on a free port, with a data directory we own."""

    def __init__(self, data_dir: Path, port: int | None = None, log: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log = log or data_dir.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> float:
        """Spawn the server and wait until every shard answers; return the seconds it took."""
        begin = time.perf_counter()
        argv = [str(FLASHQ), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"flashq serve exited with {self.proc.returncode}; see {self.log}"
                )
            with contextlib.suppress(OSError, ValueError):
                # STATS scatters to every shard process: ok means all of them are up.
                if request(self.port, {"cmd": "STATS"}, timeout_s=2.0).get("ok"):
                    return time.perf_counter() - begin
            if time.monotonic() > deadline:
                raise TimeoutError(f"flashq serve not ready after {timeout_s:g} s; see {self.log}")
            time.sleep(0.02)

    @property
    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc is not None else []

    def cpu_by_role(self) -> dict[str, float]:
        return {role(pid): cpu_seconds(pid) for pid in self.pids}

    def memory(self) -> dict[str, Any]:
        per = {role(pid): memory_kib(pid) for pid in self.pids}
        return {
            "rss_kib": sum(m["rss_kib"] for m in per.values()),
            "pss_kib": sum(m["pss_kib"] for m in per.values()),
            "processes": per,
        }

    def stop(self, timeout_s: float = 60.0) -> float:
        """SIGTERM (graceful: shards flush), SIGKILL the group if it hangs; return seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        begin = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Children outliving the supervisor would skew the next measurement.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return time.perf_counter() - begin


@contextlib.contextmanager
def running(data_dir: Path, log: Path | None = None) -> Iterator[FlashQServer]:
    server = FlashQServer(data_dir, log=log)
    server.start()
    try:
        yield server
    finally:
        server.stop()
