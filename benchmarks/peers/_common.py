"""What every Python driver shares: arguments, payloads, pacing, draining, the result line.

Standard library only: a driver runs in its peer's own virtual environment (benchmarks/.peers/),
where nothing of the project is installed. A driver measures one scenario and prints one JSON
line on stdout (`emit`); the orchestrator (benchmarks/run.py) reads the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

SCENARIOS = ("single", "pipelined", "bulk", "process", "latency", "large_push", "large_process")
PEERS_DIR = Path(__file__).resolve().parent
LATENCY_FILE_ENV = "BENCH_LATENCY_FILE"
REDIS_URL_ENV = "BENCH_REDIS_URL"
SERVER_PIDS_ENV = "BENCH_SERVER_PIDS"  # "pid:role,pid:role": whose CPU to attribute to the run
ANNOUNCE_ENV = "BENCH_ANNOUNCE"  # set: say on stderr when the measured section starts


# Polling an out-of-process worker's progress: often enough for a ~0.1% error on a run of
# seconds, rarely enough not to steal the CPU the worker needs on a 2-core machine.
POLL_S = 0.01


class Unsupported(Exception):
    """The system has no equivalent for this scenario: reported as n/a, not as a failure."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one benchmark scenario, one JSON result line")
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--jobs", type=int, required=True, help="jobs to push / process")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/1", help="broker address")
    parser.add_argument("--queue", default="bench")
    parser.add_argument("--concurrency", type=int, default=10, help="worker concurrency")
    parser.add_argument("--window", type=int, default=1000, help="requests in flight (pipelined)")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per bulk request")
    parser.add_argument("--rate", type=float, default=500.0, help="jobs/s (latency)")
    parser.add_argument("--payload-bytes", type=int, default=10_240, help="large payload size")
    parser.add_argument("--variant", default="", help="driver-specific variant (flashQ: raw)")
    parser.add_argument("--keep", action="store_true", help="leave the jobs queued (flashQ)")
    return parser.parse_args(argv)


def payload(i: int, args: argparse.Namespace) -> dict[str, Any]:
    """The job data: `{"i": n}`, or with a filler string of `payload_bytes` for large jobs."""
    if args.scenario.startswith("large"):
        return {"i": i, "s": "x" * args.payload_bytes}
    return {"i": i}


def chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def emit(system: str, args: argparse.Namespace, **result: Any) -> None:
    """Print the one result line: scenario, jobs, seconds, rate, client CPU, extras."""
    line = {"system": system, "scenario": args.scenario, **result}
    jobs, seconds = result.get("jobs"), result.get("seconds")
    if jobs and seconds:
        line["rate"] = jobs / seconds
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def run_main(system: str, measure: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """Parse the arguments, run `measure`, print its result (or why there is none)."""
    args = parse_args()
    try:
        result = measure(args)
    except Unsupported as exc:
        emit(system, args, unsupported=str(exc))
        return 0
    emit(system, args, **result)
    return 0


def server_cpu() -> dict[str, float]:
    """CPU seconds so far of the server processes named in the environment, by role."""
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for item in filter(None, os.environ.get(SERVER_PIDS_ENV, "").split(",")):
        pid, _, role = item.partition(":")
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def server_cpu_delta(before: dict[str, float]) -> dict[str, float]:
    after = server_cpu()
    return {role: after[role] - before.get(role, 0.0) for role in after}


def announce() -> None:
    """Tell the orchestrator the measured section starts (it may attach a profiler now)."""
    if os.environ.get(ANNOUNCE_ENV):
        sys.stderr.write("bench:measuring\n")
        sys.stderr.flush()


class Stopwatch:
    """Wall time, this process's CPU time (all threads) and the server's CPU time over the
    measured section."""

    def __init__(self) -> None:
        announce()
        self.server = server_cpu()
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def result(self, jobs: int, **extra: Any) -> dict[str, Any]:
        return {
            "jobs": jobs,
            "seconds": time.perf_counter() - self.wall,
            "client_cpu_s": time.process_time() - self.cpu,
            "server_cpu_s": server_cpu_delta(self.server),
            **extra,
        }


def percentiles_ms(latencies_s: list[float]) -> dict[str, float]:
    """p50, p99 and max of latencies given in seconds, in milliseconds."""
    if not latencies_s:
        return {}
    ordered = sorted(latencies_s)
    last = len(ordered) - 1
    return {
        "p50_ms": ordered[round(0.50 * last)] * 1000,
        "p99_ms": ordered[round(0.99 * last)] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def latency_result(latencies_s: list[float], pushed: int, seconds: float) -> dict[str, Any]:
    # The first 2% are warm-up (connections, first imports in the worker): not the steady state.
    steady = latencies_s[len(latencies_s) // 50 :]
    return {
        "jobs": pushed,
        "seconds": seconds,
        "received": len(latencies_s),
        **percentiles_ms(steady),
    }


def paced(total: int, rate: float) -> Iterator[tuple[int, float]]:
    """(index, due time on `time.perf_counter`) at a steady `rate`, on an absolute schedule."""
    start = time.perf_counter() + 0.05
    for i in range(total):
        yield i, start + i / rate


def sleep_until(due: float) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


async def asleep_until(due: float) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def in_flight(total: int, window: int, push_one: Callable[[int], Awaitable[Any]]) -> None:
    """Run `push_one(i)` for i < total with `window` calls in flight (asyncio)."""
    counter = iter(range(total))

    async def lane() -> None:
        for i in counter:
            await push_one(i)

    await asyncio.gather(*(lane() for _ in range(min(window, total))))


# -- latency samples from worker processes ------------------------------------------------------


async def timed_push_scenario(
    args: argparse.Namespace, push_one: Callable[[int], Awaitable[Any]]
) -> dict[str, Any] | None:
    """single and pipelined, timed, for a peer that enqueues one job at a time (no bulk API:
    the bulk scenarios are unsupported); None for the scenarios the peer runs itself."""
    if args.scenario == "single":
        watch = Stopwatch()
        for i in range(args.jobs):
            await push_one(i)
        return watch.result(args.jobs)
    if args.scenario == "pipelined":
        watch = Stopwatch()
        await in_flight(args.jobs, args.window, push_one)
        return watch.result(args.jobs)
    if args.scenario in ("bulk", "large_push"):
        raise Unsupported("no bulk enqueue API")
    return None


def record_latency(sent_at: float) -> None:
    """Called by a handler in any process: append now - sent_at to the driver's sample file."""
    path = os.environ.get(LATENCY_FILE_ENV)
    if path:
        line = f"{time.time() - sent_at:.6f}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@contextlib.contextmanager
def latency_file() -> Iterator[Path]:
    """A fresh sample file, exported to worker processes through the environment."""
    fd, name = tempfile.mkstemp(prefix="bench-lat-", suffix=".txt")
    os.close(fd)
    os.environ[LATENCY_FILE_ENV] = name
    try:
        yield Path(name)
    finally:
        os.environ.pop(LATENCY_FILE_ENV, None)
        with contextlib.suppress(OSError):
            os.unlink(name)


def read_latencies(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()]


def wait_samples(path: Path, expected: int, timeout_s: float = 30.0) -> list[float]:
    """Wait until the workers have recorded `expected` samples (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = read_latencies(path)
        if len(samples) >= expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def external_latency(
    args: argparse.Namespace,
    start: Callable[[], subprocess.Popen[bytes]],
    send: Callable[[float], Any],
) -> dict[str, Any]:
    """Latency through an out-of-process worker: `send(sent_at)` enqueues one job whose
    handler calls `record_latency(sent_at)`; a first job tells when the worker is up."""
    with latency_file() as path:
        worker = start()
        try:
            send(time.time())
            if not wait_samples(path, 1, timeout_s=60):
                raise TimeoutError("the worker did not start")
            path.write_text("")
            begin = time.perf_counter()
            for _, due in paced(args.jobs, args.rate):
                sleep_until(due)
                send(time.time())
            seconds = time.perf_counter() - begin
            samples = wait_samples(path, args.jobs)
        finally:
            stop_worker(worker)
    return latency_result(samples, args.jobs, seconds)


async def aexternal_latency(
    args: argparse.Namespace,
    start: Callable[[], subprocess.Popen[bytes]],
    send: Callable[[float], Awaitable[Any]],
) -> dict[str, Any]:
    """`external_latency` for an asyncio producer."""
    with latency_file() as path:
        worker = start()
        try:
            await send(time.time())
            deadline = time.monotonic() + 60
            while not read_latencies(path):
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker did not start")
                await asyncio.sleep(0.05)
            path.write_text("")
            begin = time.perf_counter()
            for _, due in paced(args.jobs, args.rate):
                await asleep_until(due)
                await send(time.time())
            seconds = time.perf_counter() - begin
            samples = wait_samples(path, args.jobs)
        finally:
            stop_worker(worker)
    return latency_result(samples, args.jobs, seconds)


# -- worker processes ---------------------------------------------------------------------------


def spawn_worker(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a peer's worker command in its own process group, with the peers dir importable."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PEERS_DIR), full_env.get("PYTHONPATH")])
    )
    full_env.update(env or {})
    return subprocess.Popen(argv, env=full_env, start_new_session=True, stdout=subprocess.DEVNULL)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group, then SIGKILL it if it is still there after 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_drained(
    remaining: Callable[[], int], total: int, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Time an out-of-process worker draining `total` jobs by polling how many are left.

    The clock starts at the first poll that sees a job gone (worker start-up is not
    measured) and stops when none is left; the jobs counted are those drained in between.
    """
    deadline = time.monotonic() + timeout_s
    left = remaining()
    while left >= total:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker never started")
        time.sleep(POLL_S)
        left = remaining()
    watch = Stopwatch()
    start_left = left
    while left > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} jobs still queued at the deadline")
        time.sleep(POLL_S)
        left = remaining()
    # Jobs gone before the first observation were drained before the clock started.
    return watch.result(start_left)


class DrainClock:
    """For in-process workers: the handler calls `tick()`; `done` is set after `total` calls."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu0 = 0.0
        self.server: dict[str, float] = {}

    def tick(self) -> bool:
        if self.count == 0:
            announce()
            self.server = server_cpu()
            self.first = time.perf_counter()
            self.cpu0 = time.process_time()
        self.count += 1
        if self.count >= self.total:
            self.last = time.perf_counter()
            return True
        return False

    def result(self) -> dict[str, Any]:
        end = self.last or time.perf_counter()
        # The first job's start opens the clock: it ran before the clock, so it is not counted.
        return {
            "jobs": max(self.count - 1, 1),
            "seconds": end - self.first,
            "client_cpu_s": time.process_time() - self.cpu0,
            "server_cpu_s": server_cpu_delta(self.server),
        }
