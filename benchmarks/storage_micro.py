"""Micro-benchmark of the storage backends: commit throughput and latency, load and compaction.

Measures what DESIGN.md's performance budget assumed: records/s through `commit()` at
batches of 1,000 (embedded log with fsync "never" and "always", against SQLite WAL doing the
same group commit), and how long a restart takes to load a shard of 1,000,000 records.
The machine is shared and noisy: compare ratios, and keep runs short.

    .venv/bin/python benchmarks/storage_micro.py [--records 200000] [--load-records 1000000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shards.storage import EmbeddedStorage, FsyncPolicy, MemoryStorage, Storage

logger = logging.getLogger("storage_micro")

BATCH = 1000


def job_value(n: int, size: int) -> bytes:
    """A stand-in for a serialized job: `size` bytes, different per job."""
    head = f'{{"id":{n},"queue":"emails","state":"waiting","data":{{"to":"user{n}@x.io"}}'.encode()
    return (head + b" " * size)[: size - 1] + b"}"


def batches(count: int, size: int, shards: int) -> Iterator[dict[int, dict[str, bytes | None]]]:
    """Batches of BATCH new records spread over `shards` shards."""
    for start in range(0, count, BATCH):
        changes: dict[int, dict[str, bytes | None]] = {}
        for n in range(start, min(start + BATCH, count)):
            changes.setdefault(n % shards, {})[f"j:{n}"] = job_value(n, size)
        yield changes


def bench_commit(
    name: str, make: Callable[[], Storage], records: int, size: int, shards: int
) -> None:
    store = make()
    try:
        for shard in range(shards):
            store.load(shard)
        work = list(batches(records, size, shards))
        latencies = []
        started = time.perf_counter()
        for changes in work:
            before = time.perf_counter_ns()
            store.commit(changes)
            latencies.append((time.perf_counter_ns() - before) / 1000)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    latencies.sort()
    logger.info(
        "%-44s %9.0f rec/s   commit p50 %7.0f µs  p99 %7.0f µs",
        name,
        records / elapsed,
        statistics.median(latencies),
        latencies[int(len(latencies) * 0.99) - 1],
    )


def bench_sqlite(name: str, path: str, synchronous: str, records: int, size: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    work = [
        [(key, value) for key, value in changes[0].items()] for changes in batches(records, size, 1)
    ]
    latencies = []
    started = time.perf_counter()
    for rows in work:
        before = time.perf_counter_ns()
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
        db.execute("COMMIT")
        latencies.append((time.perf_counter_ns() - before) / 1000)
    elapsed = time.perf_counter() - started
    db.close()
    latencies.sort()
    logger.info(
        "%-44s %9.0f rec/s   commit p50 %7.0f µs  p99 %7.0f µs",
        name,
        records / elapsed,
        statistics.median(latencies),
        latencies[int(len(latencies) * 0.99) - 1],
    )


def bench_load(root: str, records: int, size: int) -> None:
    data = os.path.join(root, "load")
    store = EmbeddedStorage(data, compact_min_bytes=1 << 62)
    store.load(0)
    for changes in batches(records, size, 1):
        store.commit(changes)
    log_bytes = store.statistics().log_bytes[0]
    store.close()

    started = time.perf_counter()
    store = EmbeddedStorage(data, compact_min_bytes=1 << 62)
    state = store.load(0)
    elapsed = time.perf_counter() - started
    store.close()
    logger.info(
        "load %d records of %d B from the log (%.0f MiB):   %.2f s (%.0f rec/s)",
        len(state), size, log_bytes / 2**20, elapsed, len(state) / elapsed,
    )  # fmt: skip
    del state

    store = EmbeddedStorage(data, compact_min_bytes=0, background_compaction=False)
    store.load(0)
    started = time.perf_counter()
    store.commit({0: {"j:0": None}})  # over the thresholds: compacts inside this commit
    elapsed = time.perf_counter() - started
    snap_bytes = store.statistics().snapshot_bytes[0]
    store.close()
    logger.info(
        "compaction into a %.0f MiB snapshot:            %.2f s", snap_bytes / 2**20, elapsed
    )

    started = time.perf_counter()
    store = EmbeddedStorage(data)
    state = store.load(0)
    elapsed = time.perf_counter() - started
    store.close()
    logger.info(
        "load %d records from the snapshot:          %.2f s (%.0f rec/s)",
        len(state), elapsed, len(state) / elapsed,
    )  # fmt: skip


def run_commit_benchmarks(root: str, n: int, size: int) -> None:
    """Records/s and commit latency of every backend at batches of BATCH."""
    runs = iter(range(1_000_000))

    def embedded(fsync: FsyncPolicy) -> Callable[[], Storage]:
        return lambda: EmbeddedStorage(os.path.join(root, f"e{next(runs)}"), fsync=fsync)

    logger.info("commit, batches of %d records of %d B (%d records per run)", BATCH, size, n)
    bench_commit("memory", MemoryStorage, n, size, 1)
    bench_commit("embedded fsync=never, 1 shard", embedded("never"), n, size, 1)
    bench_commit("embedded fsync=never, batch over 8 shards", embedded("never"), n, size, 8)
    bench_commit("embedded fsync=always, 1 shard", embedded("always"), n, size, 1)
    bench_commit("embedded fsync=always, batch over 8 shards", embedded("always"), n, size, 8)
    for synchronous in ("OFF", "NORMAL", "FULL"):
        path = os.path.join(root, f"sqlite-{synchronous}.db")
        bench_sqlite(f"sqlite WAL synchronous={synchronous}", path, synchronous, n, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per commit run")
    parser.add_argument("--size", type=int, default=200, help="bytes per record value")
    parser.add_argument("--load-records", type=int, default=1_000_000)
    parser.add_argument("--load-size", type=int, default=120)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        n, size = args.records, args.size
        if n:
            run_commit_benchmarks(root, n, size)
        if args.load_records:
            bench_load(root, args.load_records, args.load_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
