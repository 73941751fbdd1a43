"""Raw wire-level throughput of one server configuration (no SDK in the way).

    python benchmarks/wire_micro.py --shards-procs 2 --storage embedded [--fsync always]

Measures, on one connection: sequential PUSH (one in flight), pipelined PUSH (many in flight
with reqId), PUSHB of 1,000, and PULLB+ACKB draining. Prints one JSON line. Used for the
foundation and durability notes; the side-by-side comparison with peers is `make bench`.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import ServerProcess


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, objs: list[dict[str, object]]) -> None:
        self.sock.sendall(b"".join(orjson.dumps(o) + b"\n" for o in objs))

    def recv(self, n: int) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        while len(out) < n:
            while b"\n" in self.buf and len(out) < n:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(orjson.loads(line))
            if len(out) < n:
                self.buf += self.sock.recv(1 << 20)
        return out


def rate(n: int, seconds: float) -> float:
    return round(n / seconds)


def measure(port: int, n_seq: int, n_pipe: int, n_bulk: int) -> dict[str, float]:
    c = Conn(port)
    t = time.perf_counter()
    for i in range(n_seq):
        c.send([{"cmd": "PUSH", "queue": "seq", "data": {"i": i}}])
        c.recv(1)
    seq = rate(n_seq, time.perf_counter() - t)

    window = 1000
    t = time.perf_counter()
    sent = received = 0
    while received < n_pipe:
        burst = min(window - (sent - received), n_pipe - sent)
        if burst > 0:
            c.send(
                [{"cmd": "PUSH", "queue": "pipe", "data": {"i": sent + k}, "reqId": str(sent + k)}
                 for k in range(burst)]
            )  # fmt: skip
            sent += burst
        got = c.recv(min(100, sent - received))
        received += len(got)
    pipe = rate(n_pipe, time.perf_counter() - t)

    jobs = [{"data": {"i": i}} for i in range(1000)]
    t = time.perf_counter()
    inflight = 0
    for _ in range(n_bulk // 1000):
        c.send([{"cmd": "PUSHB", "queue": "bulk", "jobs": jobs}])
        inflight += 1
        if inflight >= 4:
            c.recv(1)
            inflight -= 1
    c.recv(inflight)
    bulk = rate(n_bulk, time.perf_counter() - t)

    t = time.perf_counter()
    done = 0
    while done < n_bulk:
        (reply,) = c.send(
            [{"cmd": "PULLB", "queue": "bulk", "count": 1000, "timeout": 1000}]
        ) or c.recv(1)
        ids = [j["id"] for j in reply["jobs"]]  # type: ignore[union-attr]
        c.send([{"cmd": "ACKB", "ids": ids}])
        c.recv(1)
        done += len(ids)
    drain = rate(n_bulk, time.perf_counter() - t)
    return {"seq_push": seq, "pipelined_push": pipe, "pushb_1000": bulk, "pullb_ackb": drain}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards-procs", type=int, default=2)
    ap.add_argument("--storage", default="embedded")
    ap.add_argument("--fsync", default="never")
    ap.add_argument("--seq", type=int, default=5000)
    ap.add_argument("--pipe", type=int, default=50_000)
    ap.add_argument("--bulk", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(
            Path(tmp), shard_procs=args.shards_procs, storage=args.storage,
            extra=["--fsync", args.fsync],
        ).start()  # fmt: skip
        try:
            result = measure(srv.port, args.seq, args.pipe, args.bulk)
        finally:
            srv.stop()
    print(json.dumps({"procs": args.shards_procs, "storage": args.storage, "fsync": args.fsync,
                      **result}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
