"""How fast the SDK `Worker` drains no-op jobs, next to a raw PULLB/ACKB loop on the same server.

Not a test (no `test_` prefix, pytest does not collect it): a reproducible measurement for
work on the worker's hot path. It starts a real server (2 shard processes, memory storage),
then for each round and each variant preloads `--jobs` jobs with PUSHB into a fresh queue
and drains them in a child process, timed from the first job handled to the last one
acknowledged. Variants run interleaved, round after round, and the report gives medians:
the build machine is shared and noisy, so only numbers from one run compare.

    .venv/bin/python -m tests.client.perf_worker                  # raw, async, sync
    .venv/bin/python -m tests.client.perf_worker --baseline DIR   # also the SDK found in DIR

`--baseline DIR` names a directory holding another `flashq` package (e.g. the last commit's:
`git archive HEAD flashq | tar -x -C DIR`); its worker variants run beside the current ones.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("raw", "async", "sync", "yield")
DEFAULT_VARIANTS = ("raw", "async", "sync")


# -- the child: one drain, one JSON line on stdout ---------------------------------------------


def _raw_drain(port: int, queue: str, jobs: int, count: int) -> tuple[float, float, float]:
    """PULLB `count`, then ACKB of those and the next PULLB in one write: a round trip each."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    ids = itertools.count(1)
    early: dict[str, dict[str, Any]] = {}

    def send(cmds: list[dict[str, Any]]) -> list[str]:
        req_ids = []
        for cmd in cmds:
            cmd["reqId"] = req_id = str(next(ids))
            req_ids.append(req_id)
        sock.sendall(b"".join(orjson.dumps(c) + b"\n" for c in cmds))
        return req_ids

    def wait(req_ids: list[str]) -> list[dict[str, Any]]:
        nonlocal buffer
        while any(r not in early for r in req_ids):
            while b"\n" not in buffer:
                buffer += sock.recv(1 << 20)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                reply = orjson.loads(line)
                early[reply.pop("reqId")] = reply
        return [early.pop(r) for r in req_ids]

    pull = {"cmd": "PULLB", "queue": queue, "count": count, "timeout": 1000}
    batch = wait(send([dict(pull)]))[0]["jobs"]
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while batch:
        acked = [job["id"] for job in batch]
        done += len(acked)
        if done >= jobs:
            wait(send([{"cmd": "ACKB", "ids": acked}]))
            break
        batch = wait(send([{"cmd": "ACKB", "ids": acked}, dict(pull)]))[1]["jobs"]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sock.close()
    return done, elapsed, cpu


async def _worker_drain(
    port: int, queue: str, jobs: int, concurrency: int, variant: str
) -> tuple[float, float, float]:
    import trio

    from flashq.client import FlashQ, Job, Worker

    first: list[tuple[float, float]] = []  # wall and CPU clocks at the first job

    async def async_noop(job: Job) -> None:
        if not first:
            first.append((time.perf_counter(), time.process_time()))

    def sync_noop(job: Job) -> None:
        if not first:
            first.append((time.perf_counter(), time.process_time()))

    async def yielding_noop(job: Job) -> None:  # awaits once, as any real async handler does
        if not first:
            first.append((time.perf_counter(), time.process_time()))
        await trio.lowlevel.checkpoint()

    handler = {"async": async_noop, "sync": sync_noop, "yield": yielding_noop}[variant]
    async with FlashQ(port=port) as client:
        worker = Worker(queue, handler, client=client, concurrency=concurrency)
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.serve)
            # `processed` counts acknowledged jobs; polling it costs less than a listener.
            while worker.processed < jobs:  # noqa: ASYNC110
                await trio.sleep(0.01)
            end, cpu = time.perf_counter(), time.process_time()
            await worker.stop()
    return worker.processed, end - first[0][0], cpu - first[0][1]


def child(args: argparse.Namespace) -> None:
    if args.variant == "raw":
        done, wall, cpu = _raw_drain(args.port, args.queue, args.jobs, args.raw_count)
    else:
        import trio

        done, wall, cpu = trio.run(
            _worker_drain,
            args.port,
            args.queue,
            args.jobs,
            args.concurrency,
            args.variant,
        )
    import flashq

    result = {"jobs_per_s": done / wall, "cpu_us_per_job": cpu / done * 1e6, "sdk": flashq.__file__}
    sys.stdout.write(json.dumps(result) + "\n")


# -- the parent: server, preload, rounds, report -----------------------------------------------


def _preload(port: int, queue: str, jobs: int) -> None:
    """PUSHB `jobs` jobs, 1000 per request, all requests in one write."""
    starts = range(0, jobs, 1000)
    reqs = [
        {"cmd": "PUSHB", "queue": queue, "reqId": str(s),
         "jobs": [{"data": {"i": i}} for i in range(s, min(s + 1000, jobs))]}
        for s in starts
    ]  # fmt: skip
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"".join(orjson.dumps(r) + b"\n" for r in reqs))
        buffer = b""
        while buffer.count(b"\n") < len(reqs):
            buffer += sock.recv(1 << 16)


def _run_child(args: argparse.Namespace, variant: str, sdk: Path, queue: str) -> dict[str, float]:
    """Run one drain in a fresh interpreter that imports `flashq` from `sdk`.

    Run as a script, so that neither the working directory nor this checkout comes
    before `sdk` on the path (the child imports nothing from `tests`).
    """
    env = {**os.environ, "PYTHONPATH": str(sdk)}
    cmd = [
        sys.executable, __file__, "--child", "--variant", variant,
        "--port", str(args.port), "--queue", queue, "--jobs", str(args.jobs),
        "--concurrency", str(args.concurrency), "--raw-count", str(args.raw_count),
    ]  # fmt: skip
    out = subprocess.run(cmd, env=env, cwd=sdk, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result.pop("sdk")).is_relative_to(sdk):
        raise RuntimeError(f"the {variant} child did not import flashq from {sdk}")
    return {k: float(v) for k, v in result.items()}


def parent(args: argparse.Namespace) -> None:
    from tests.harness import ServerProcess

    variants = args.variants.split(",")
    if "raw" not in variants:
        variants.insert(0, "raw")
    runs: list[tuple[str, str, Path]] = [("current", v, ROOT) for v in variants]
    if args.baseline:
        base = Path(args.baseline).resolve()
        runs += [("baseline", v, base) for v in variants if v != "raw"]
    results: dict[str, list[dict[str, float]]] = {f"{who} {v}": [] for who, v, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), shard_procs=2, storage="memory").start()
        args.port = server.port
        try:
            for rnd in range(args.rounds):
                for n, (who, variant, path) in enumerate(runs):
                    queue = f"perf-{rnd}-{n}"
                    _preload(args.port, queue, args.jobs)
                    result = _run_child(args, variant, path, queue)
                    results[f"{who} {variant}"].append(result)
                    sys.stderr.write(
                        f"round {rnd + 1}: {who:8} {variant:5} {result['jobs_per_s']:9.0f} jobs/s"
                        f" {result['cpu_us_per_job']:7.1f} us CPU/job\n"
                    )
        finally:
            server.stop()
    raw = statistics.median(r["jobs_per_s"] for r in results["current raw"])
    print(
        f"{args.jobs} no-op jobs, worker concurrency {args.concurrency}, raw PULLB count"
        f" {args.raw_count}, {args.rounds} rounds (medians; client CPU is the drain's process"
        " time per job):"
    )
    for name, runs_of in results.items():
        rate = statistics.median(r["jobs_per_s"] for r in runs_of)
        cpu = statistics.median(r["cpu_us_per_job"] for r in runs_of)
        all_rates = ", ".join(f"{r['jobs_per_s']:.0f}" for r in runs_of)
        print(
            f"  {name:17} {rate:9.0f} jobs/s ({rate / raw:6.1%} of raw)"
            f"  client CPU {cpu:6.1f} us/job   [{all_rates}]"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--raw-count", type=int, default=100, help="jobs per PULLB in the raw loop")
    p.add_argument("--baseline", help="a directory holding another flashq package to compare")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (yield: an async handler that awaits"
        " once); raw always runs",
    )
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--queue", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
