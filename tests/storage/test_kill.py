"""A real process, SIGKILLed at a random moment, keeps every batch it acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from shards.storage import EmbeddedStorage

from .conftest import REPO_ROOT

SHARDS = 4

CHILD = textwrap.dedent(
    """
    import sys
    from shards.storage import EmbeddedStorage
    from tests.storage.test_kill import batch

    # small thresholds: the kill also lands in rotations and background compactions
    store = EmbeddedStorage(sys.argv[1], compact_min_bytes=100_000, compact_ratio=1.0)
    for shard in range(4):
        store.load(shard)
    n = int(sys.argv[2])
    while True:
        store.commit({n % 4: batch(n)})
        print(n, flush=True)
        n += 1
    """
)


def batch(n: int) -> dict[str, bytes | None]:
    """Batch `n` (for shard n % 4): 20 new keys, and the keys of batch n - 400 deleted."""
    changes: dict[str, bytes | None] = {f"b:{n}:{i}": f"{n}/{i} ".encode() * 10 for i in range(20)}
    changes.update({f"b:{n - 400}:{i}": None for i in range(20)})
    return changes


def reference(count: int) -> list[dict[str, bytes]]:
    """Each shard's state once batches 0..count-1 are applied."""
    states: list[dict[str, bytes]] = [{} for _ in range(SHARDS)]
    for n in range(count):
        for key, value in batch(n).items():
            if value is None:
                states[n % SHARDS].pop(key, None)
            else:
                states[n % SHARDS][key] = value
    return states


def run_and_kill(data: Path, start: int, acks_before_kill: int) -> int:
    """Start the child at batch `start`, SIGKILL it after that many acks; the last acked."""
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data), str(start)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert child.stdout is not None
        lines: list[str] = []
        try:
            while len(lines) < acks_before_kill and (line := child.stdout.readline()):
                lines.append(line)
            child.send_signal(signal.SIGKILL)
            # through the same buffered reader: lines it already holds are acks too
            lines += child.stdout.readlines()
        finally:
            child.kill()
            child.wait(timeout=30)
            child.stdout.close()
        errors.seek(0)
        assert child.returncode == -signal.SIGKILL, errors.read()
    acked = [int(line) for line in lines if line.endswith("\n")]
    assert acked == list(range(start, start + len(acked)))
    return acked[-1] if acked else start - 1


@pytest.mark.chaos
def test_sigkill_loses_no_acknowledged_batch(tmp_path: Path):
    rng = random.Random(2026)
    data = tmp_path / "data"
    start = 0
    for _ in range(3):
        last_acked = run_and_kill(data, start, acks_before_kill=rng.randrange(100, 1500))
        # every acknowledged batch is there; the one in flight may or may not be
        acked, with_in_flight = reference(last_acked + 1), reference(last_acked + 2)
        store = EmbeddedStorage(str(data))
        try:
            for shard in range(SHARDS):
                assert store.load(shard) in (acked[shard], with_in_flight[shard])
        finally:
            store.close()
        start = last_acked + 1  # batches are idempotent: the in-flight one may run twice
