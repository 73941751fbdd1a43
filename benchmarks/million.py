"""RSS of all flashQ processes holding 1,000,000 waiting jobs, and the restart time to serve
them again (default embedded storage).

    python benchmarks/million.py [--jobs 1000000] [--shards-procs 2]
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


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def fill(port: int, n: int, queues: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    buf = b""
    pending = 0
    for b in range(n // 1000):
        jobs = [{"data": {"i": b * 1000 + k}} for k in range(1000)]
        sock.sendall(
            orjson.dumps({"cmd": "PUSHB", "queue": f"m{b % queues}", "jobs": jobs}) + b"\n"
        )
        pending += 1
        while pending >= 8 or (b == n // 1000 - 1 and pending):
            while b"\n" not in buf:
                buf += sock.recv(1 << 20)
            line, buf = buf.split(b"\n", 1)
            assert orjson.loads(line)["ok"]
            pending -= 1
    sock.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--queues", type=int, default=8)
    ap.add_argument("--shards-procs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(Path(tmp), shard_procs=args.shards_procs, storage="embedded").start()
        t = time.perf_counter()
        fill(srv.port, args.jobs, args.queues)
        fill_s = time.perf_counter() - t
        time.sleep(1)
        pids = [srv.proc.pid, *srv.children().values()]  # type: ignore[union-attr]
        rss = rss_bytes(pids)
        srv.stop()
        srv = ServerProcess(Path(tmp), shard_procs=args.shards_procs, storage="embedded")
        t = time.perf_counter()
        srv.start(timeout_s=300)
        with srv.client() as c:
            count = sum(c.call("COUNT", queue=f"m{q}")["count"] for q in range(args.queues))
        restart_s = time.perf_counter() - t
        time.sleep(1)
        rss_after = rss_bytes([srv.proc.pid, *srv.children().values()])  # type: ignore[union-attr]
        srv.stop()
    result = {
        "jobs": args.jobs,
        "fill_jobs_per_s": round(args.jobs / fill_s),
        "rss_mib": round(rss / 2**20),
        "rss_after_restart_mib": round(rss_after / 2**20),
        "restart_s": round(restart_s, 2),
        "count_after_restart": count,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
