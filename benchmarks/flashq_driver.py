"""flashQ driver: one scenario against a running server, one JSON result line.

Runs in the project's environment. The default variant is the flashQ Python SDK as a user
would write it (`FlashQ.push`, `push_batch`, `Worker`) under Trio. `--variant raw` speaks the
wire protocol over a plain blocking socket (JSON lines, `reqId` pipelining, PULLB/ACKB loop)
to show what the SDK costs on top of the server. `--url` is `host:port`.
"""

from __future__ import annotations

import argparse
import itertools
import socket
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    DrainClock,
    Stopwatch,
    Unsupported,
    chunks,
    latency_result,
    paced,
    payload,
    run_main,
)

from flashq.client import FlashQ, Job, Worker

# -- SDK ------------------------------------------------------------------------------------------


async def sdk_bulk(client: FlashQ, args: argparse.Namespace) -> None:
    for block in chunks(args.jobs, args.batch):
        await client.push_batch(args.queue, [payload(i, args) for i in block])


async def sdk_pipelined(client: FlashQ, args: argparse.Namespace) -> None:
    """Single PUSH commands, `window` in flight: four lanes, each sending `client.pipeline()`
    chunks of a quarter window and awaiting them (as the raw driver's sliding window)."""
    blocks = iter(chunks(args.jobs, max(1, args.window // 4)))

    async def lane() -> None:
        pipe = client.pipeline()
        for block in blocks:
            await pipe.execute(pipe.push(args.queue, payload(i, args)) for i in block)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(lane)


async def sdk_drain(client: FlashQ, args: argparse.Namespace) -> dict[str, Any]:
    """The idiomatic Worker (PULLB + ACKB, concurrency 10), timed from its first job."""
    clock = DrainClock(args.jobs)

    async def noop(job: Job) -> None:
        if clock.count == 0:
            clock.tick()

    worker = Worker(args.queue, noop, client=client, concurrency=args.concurrency)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        # `processed` counts jobs whose ACKB was answered: the end is the last ack. Polling
        # it costs less than a `completed` listener called for every job.
        while worker.processed < args.jobs:  # noqa: ASYNC110
            await trio.sleep(0.002)
        clock.last = time.perf_counter()
        clock.count = worker.processed
        await worker.stop()
    return clock.result()


async def sdk_latency(client: FlashQ, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[float] = []
    all_in = trio.Event()

    async def handler(job: Job) -> None:
        samples.append(time.time() - job.data["t"])
        if len(samples) >= args.jobs:
            all_in.set()

    worker = Worker(args.queue, handler, client=client, concurrency=args.concurrency)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.serve)
        start = time.perf_counter()
        for i, due in paced(args.jobs, args.rate):
            await trio.sleep_until(trio.current_time() + max(0.0, due - time.perf_counter()))
            await client.push(args.queue, {"i": i, "t": time.time()})
        seconds = time.perf_counter() - start
        with trio.move_on_after(30):
            await all_in.wait()
        await worker.stop()
    return latency_result(samples, args.jobs, seconds)


async def sdk_measure(args: argparse.Namespace) -> dict[str, Any]:
    host, port = args.url.rsplit(":", 1)
    async with FlashQ(host=host, port=int(port)) as client:
        await client.obliterate(args.queue)
        try:
            scenario = args.scenario
            if scenario == "single":
                watch = Stopwatch()
                for i in range(args.jobs):
                    await client.push(args.queue, payload(i, args))
                return watch.result(args.jobs)
            if scenario == "pipelined":
                watch = Stopwatch()
                await sdk_pipelined(client, args)
                return watch.result(args.jobs)
            if scenario in ("bulk", "large_push"):
                watch = Stopwatch()
                await sdk_bulk(client, args)
                return watch.result(args.jobs)
            if scenario in ("process", "large_process"):
                await sdk_bulk(client, args)
                return await sdk_drain(client, args)
            if scenario == "latency":
                return await sdk_latency(client, args)
            raise AssertionError(scenario)
        finally:
            if not args.keep:
                await client.obliterate(args.queue)


# -- raw protocol -------------------------------------------------------------------------------


class RawConnection:
    """JSON lines over a blocking socket; replies matched by `reqId` (they may come out of order:
    a PULLB and an ACKB go to different shard processes)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.ids = itertools.count(1)
        self.early: dict[str, dict[str, Any]] = {}

    def send(self, cmds: list[dict[str, Any]]) -> list[str]:
        req_ids = []
        for cmd in cmds:
            cmd["reqId"] = req_id = str(next(self.ids))
            req_ids.append(req_id)
        self.sock.sendall(b"".join(orjson.dumps(c) + b"\n" for c in cmds))
        return req_ids

    def _read(self) -> list[dict[str, Any]]:
        while b"\n" not in self.buffer:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        return [orjson.loads(line) for line in complete]

    def wait(self, req_ids: list[str]) -> list[dict[str, Any]]:
        """The replies to `req_ids`, in that order (others read meanwhile are kept)."""
        early = self.early
        while any(r not in early for r in req_ids):
            for reply in self._read():
                early[reply.pop("reqId", "")] = reply
        out = [early.pop(r) for r in req_ids]
        for reply in out:
            if reply.get("ok") is False:
                raise RuntimeError(f"server error: {reply.get('error')}")
        return out

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return self.wait(self.send([cmd]))[0]


def raw_pipelined(conn: RawConnection, args: argparse.Namespace) -> None:
    """A sliding window of single PUSH commands: top up by a chunk whenever a chunk returns."""
    step = max(1, args.window // 4)
    blocks = list(chunks(args.jobs, step))
    in_flight = []
    for block in blocks:
        pushes = [{"cmd": "PUSH", "queue": args.queue, "data": payload(i, args)} for i in block]
        in_flight.append(conn.send(pushes))
        if len(in_flight) == 4:
            conn.wait(in_flight.pop(0))
    for req_ids in in_flight:
        conn.wait(req_ids)


def raw_bulk(conn: RawConnection, args: argparse.Namespace) -> None:
    for block in chunks(args.jobs, args.batch):
        conn.call(
            {
                "cmd": "PUSHB",
                "queue": args.queue,
                "jobs": [{"data": payload(i, args)} for i in block],
            }
        )


def raw_drain(conn: RawConnection, args: argparse.Namespace) -> dict[str, Any]:
    """PULLB 100 then, in the same write, ACKB of those and the next PULLB: one round trip each."""
    pull = {"cmd": "PULLB", "queue": args.queue, "count": 100, "timeout": 1000}
    first = conn.call(dict(pull))
    watch = Stopwatch()
    jobs = first["jobs"]
    done = 0
    while jobs:
        ids = [job["id"] for job in jobs]  # the handler: a no-op per job
        done += len(ids)
        if done >= args.jobs:
            conn.call({"cmd": "ACKB", "ids": ids})
            break
        _, pulled = conn.wait(conn.send([{"cmd": "ACKB", "ids": ids}, dict(pull)]))
        jobs = pulled["jobs"]
    return watch.result(done)


def raw_measure(args: argparse.Namespace) -> dict[str, Any]:
    host, port = args.url.rsplit(":", 1)
    conn = RawConnection(host, int(port))
    conn.call({"cmd": "OBLITERATE", "queue": args.queue})
    try:
        scenario = args.scenario
        if scenario == "single":
            watch = Stopwatch()
            for i in range(args.jobs):
                conn.call({"cmd": "PUSH", "queue": args.queue, "data": payload(i, args)})
            return watch.result(args.jobs)
        if scenario == "pipelined":
            watch = Stopwatch()
            raw_pipelined(conn, args)
            return watch.result(args.jobs)
        if scenario in ("bulk", "large_push"):
            watch = Stopwatch()
            raw_bulk(conn, args)
            return watch.result(args.jobs)
        if scenario in ("process", "large_process"):
            raw_bulk(conn, args)
            return raw_drain(conn, args)
        raise Unsupported("the raw variant measures throughput only")
    finally:
        if not args.keep:
            conn.call({"cmd": "OBLITERATE", "queue": args.queue})
        conn.sock.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.variant == "raw":
        return raw_measure(args)
    return trio.run(sdk_measure, args)


if __name__ == "__main__":
    raise SystemExit(run_main("flashq", measure))
