"""Compaction: snapshots keep the state, bound restart work, and survive a crash at any step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shards.storage import EmbeddedStorage
from shards.storage._shard_dir import Listing

from ._workload import batch, state_after
from .conftest import REPO_ROOT, run_child

SHARD = 4
#: ~3 workload batches of log; the snapshot of ~2,500-5,000 live keys is of the same order,
#: so with ratio 1.0 a compaction happens every few batches.
MIN_BYTES = 150_000


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def opened() -> Iterator[list[EmbeddedStorage]]:
    stores: list[EmbeddedStorage] = []
    yield stores
    for store in stores:
        store.close()


def open_store(opened: list[EmbeddedStorage], data: Path, **options: object) -> EmbeddedStorage:
    settings: dict[str, object] = {
        "compact_min_bytes": MIN_BYTES,
        "compact_ratio": 1.0,
        "background_compaction": False,
        **options,
    }
    store = EmbeddedStorage(str(data), **settings)  # type: ignore[arg-type]
    opened.append(store)
    return store


def listing(data: Path) -> Listing:
    return Listing.of(str(data / f"shard-{SHARD:02d}"))


def assert_clean(data: Path) -> None:
    """Only the newest snapshot and the logs from its generation on are left."""
    found = listing(data)
    assert found.tmps == []
    assert len(found.snaps) == 1
    assert found.logs[0] == found.snaps[0]


def test_compaction_keeps_the_state_and_bounds_the_log(data: Path, opened: list[EmbeddedStorage]):
    store = open_store(opened, data)
    store.load(SHARD)
    for n in range(20):
        store.commit({SHARD: batch(n)})

    stats = store.statistics()
    assert stats.compactions >= 3
    assert stats.compaction_errors == 0
    # the log after the snapshot holds at most what accumulated since the last compaction
    assert stats.log_bytes[SHARD] <= max(MIN_BYTES, stats.snapshot_bytes[SHARD]) + 60_000
    assert_clean(data)
    assert store.load(SHARD) == state_after(20)  # re-read while open
    store.close()
    assert open_store(opened, data).load(SHARD) == state_after(20)


def test_background_compaction(data: Path, opened: list[EmbeddedStorage]):
    store = open_store(opened, data, background_compaction=True)
    store.load(SHARD)
    for n in range(20):
        store.commit({SHARD: batch(n)})
        assert store.load(SHARD) == state_after(n + 1)  # waits for a running compaction

    assert store.wait_compactions(timeout_s=30)
    assert store.statistics().compactions >= 3
    assert_clean(data)
    store.close()
    assert open_store(opened, data).load(SHARD) == state_after(20)


def test_a_shard_reopened_with_too_much_log_is_compacted_on_its_first_commit(
    data: Path, opened: list[EmbeddedStorage]
):
    # given a shard that grew without compaction
    store = open_store(opened, data, compact_min_bytes=10**12)
    store.load(SHARD)
    for n in range(8):
        store.commit({SHARD: batch(n)})
    store.close()
    assert listing(data).snaps == []

    # when it is opened with the normal thresholds, loading does not compact (memory peak)
    store = open_store(opened, data)
    assert store.load(SHARD) == state_after(8)
    assert store.statistics().compactions == 0

    # but the first commit does
    store.commit({SHARD: batch(8)})
    assert store.statistics().compactions == 1
    assert_clean(data)
    assert store.load(SHARD) == state_after(9)


def test_failed_compaction_keeps_the_logs_and_is_retried_later(
    data: Path, opened: list[EmbeddedStorage], caplog: pytest.LogCaptureFixture
):
    def fail_once(step: str) -> None:
        if step == "snapshot-synced" and not failures:
            failures.append(step)
            raise OSError(28, "No space left on device")

    failures: list[str] = []
    store = open_store(opened, data, compaction_hook=fail_once)
    store.load(SHARD)
    for n in range(4):  # the commit that crosses the threshold still succeeds
        store.commit({SHARD: batch(n)})

    assert store.statistics().compaction_errors == 1
    assert "compaction of shard 4 failed" in caplog.text
    assert listing(data).tmps == []
    assert store.load(SHARD) == state_after(4)

    for n in range(4, 12):  # retried once the log has grown by another MIN_BYTES
        store.commit({SHARD: batch(n)})
    assert store.statistics().compactions >= 1
    assert_clean(data)
    store.close()
    assert open_store(opened, data).load(SHARD) == state_after(12)


def test_close_abandons_a_running_compaction_without_a_trace(
    data: Path, opened: list[EmbeddedStorage]
):
    # given a background compaction held right after its first snapshot chunk
    reached, release = threading.Event(), threading.Event()

    def hold(step: str) -> None:
        if step == "snapshot-partial":
            reached.set()
            release.wait(timeout=30)

    store = open_store(opened, data, compact_min_bytes=10**12)
    store.load(SHARD)
    for n in range(8):  # ~5,000 live keys: more than one snapshot chunk
        store.commit({SHARD: batch(n)})
    store.close()
    store = open_store(opened, data, background_compaction=True, compaction_hook=hold)
    store.load(SHARD)
    store.commit({SHARD: batch(8)})
    assert reached.wait(timeout=30)

    # when the store is closed meanwhile
    closer = threading.Thread(target=store.close)
    closer.start()
    assert store._compactor._stopping.wait(timeout=30)
    release.set()
    closer.join(timeout=30)

    # then no snapshot was made, nothing half-written remains, and the state is whole
    assert store.statistics().compactions == 0
    assert listing(data).tmps == []
    assert listing(data).snaps == []
    assert open_store(opened, data, compact_min_bytes=10**12).load(SHARD) == state_after(9)


CRASH_CHILD = textwrap.dedent(
    """
    import os, sys
    from shards.storage import EmbeddedStorage
    from tests.storage._workload import batch

    data, target = sys.argv[1], sys.argv[2]
    compactions = 0

    def crash(step):
        global compactions
        if step == "rotated":
            compactions += 1
        if step == target and compactions == 2:  # the second one: it also folds a snapshot
            os._exit(17)

    store = EmbeddedStorage(data, compact_min_bytes=150_000, compact_ratio=1.0,
                            background_compaction=False, compaction_hook=crash)
    store.load(4)
    for n in range(30):
        store.commit({4: batch(n)})
        print(n, flush=True)
    """
)

STEPS = ["rotated", "snapshot-partial", "snapshot-synced", "renamed", "deleted-one"]


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_any_compaction_step_leaves_a_loadable_state(
    data: Path, opened: list[EmbeddedStorage], step: str
):
    # given a process killed at `step` of its second compaction
    child = run_child(CRASH_CHILD, str(data), step)
    assert child.returncode == 17, child.stderr
    acked = len(child.stdout.split())
    left = listing(data)
    evidence = {
        "rotated": left.tmps == [] and len(left.snaps) == 1 and len(left.logs) >= 2,
        "snapshot-partial": len(left.tmps) == 1,
        "snapshot-synced": len(left.tmps) == 1,
        "renamed": len(left.snaps) == 2 and left.tmps == [],
        "deleted-one": len(left.snaps) == 1 and left.logs[0] < left.snaps[0],
    }
    assert evidence[step], left

    # then a restart finds every acknowledged batch (and the one whose commit was compacting)
    store = open_store(opened, data)
    loaded = store.load(SHARD)
    assert loaded in (state_after(acked), state_after(acked + 1))
    done = acked + (loaded == state_after(acked + 1) and loaded != state_after(acked))
    found = listing(data)
    assert found.tmps == []
    assert all(gen >= found.snaps[-1] for gen in found.snaps + found.logs)

    # and the store goes on committing and compacting normally
    for n in range(done, done + 8):
        store.commit({SHARD: batch(n)})
    assert store.statistics().compactions >= 1
    store.close()
    assert_clean(data)
    assert open_store(opened, data).load(SHARD) == state_after(done + 8)


def test_leftovers_of_an_interrupted_compaction_are_removed_on_open(
    data: Path, opened: list[EmbeddedStorage]
):
    # given a compacted shard, a stray temp file and an old log that was never deleted
    store = open_store(opened, data)
    store.load(SHARD)
    for n in range(10):
        store.commit({SHARD: batch(n)})
    store.close()
    shard = data / f"shard-{SHARD:02d}"
    snap_gen = listing(data).snaps[-1]
    (shard / f"snap-{snap_gen + 1:010d}.snap.tmp").write_bytes(b"half a snapshot")
    (shard / f"log-{snap_gen - 1:010d}.log").write_bytes(b"superseded, never read")

    assert open_store(opened, data).load(SHARD) == state_after(10)
    assert_clean(data)
    assert sorted(os.listdir(shard))[0] == "LOCK"


# -- background compactions fold in a child process ----------------------------------------

#: Batches big enough that folding them takes the child seconds, so a test can catch it.
BIG = {"size": 50_000, "key_space": 1_000_000}


def compaction_children(parent: int) -> list[int]:
    """Pids of compaction processes (`python -m shards.storage._fold_child`) of `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and b"shards.storage._fold_child" in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], object], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def big_log(opened: list[EmbeddedStorage], data: Path, batches: int) -> None:
    store = open_store(opened, data, compact_min_bytes=10**12)
    store.load(SHARD)
    for n in range(batches):
        store.commit({SHARD: batch(n, **BIG)})
    store.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the child process is Linux-only")
def test_background_compaction_folds_in_a_low_priority_child(
    data: Path, opened: list[EmbeddedStorage]
):
    # given a shard with a big log, opened as a server opens it (background, no hook)
    big_log(opened, data, 20)
    store = open_store(opened, data, background_compaction=True)
    store.load(SHARD)

    # when a commit starts a compaction
    store.commit({SHARD: batch(20, **BIG)})

    # then the fold runs in a child process of ours, niced, and installs its snapshot
    assert wait_for(lambda: compaction_children(os.getpid()))
    (child,) = compaction_children(os.getpid())
    assert wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child) >= 10)  # set once started
    assert store.wait_compactions(timeout_s=60)
    assert store.statistics().compactions == 1
    assert_clean(data)
    store.close()
    assert open_store(opened, data).load(SHARD) == state_after(21, **BIG)


@pytest.mark.skipif(sys.platform != "linux", reason="the child process is Linux-only")
def test_close_kills_a_folding_child_without_a_trace(data: Path, opened: list[EmbeddedStorage]):
    big_log(opened, data, 20)
    store = open_store(opened, data, background_compaction=True)
    store.load(SHARD)
    store.commit({SHARD: batch(20, **BIG)})
    assert wait_for(lambda: compaction_children(os.getpid()))

    store.close()

    assert compaction_children(os.getpid()) == []
    assert store.statistics().compactions == 0
    assert listing(data).tmps == []
    assert listing(data).snaps == []
    assert open_store(opened, data, compact_min_bytes=10**12).load(SHARD) == state_after(21, **BIG)


KILLED_OWNER = textwrap.dedent(
    """
    import sys, time
    from shards.storage import EmbeddedStorage
    from tests.storage._workload import batch

    store = EmbeddedStorage(sys.argv[1], compact_min_bytes=150_000, compact_ratio=1.0)
    store.load(4)
    store.commit({4: batch(20, size=50_000, key_space=1_000_000)})
    print("committed", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="the child process is Linux-only")
def test_a_killed_shard_process_leaves_no_folding_child(data: Path, opened: list[EmbeddedStorage]):
    """The fold must not outlive the process that owns the shard (SIGKILLed, restarted by
    the supervisor): it would write beside the new owner."""
    # given a process that owns the shard and whose compaction is folding in a child
    big_log(opened, data, 20)
    owner = subprocess.Popen(
        [sys.executable, "-c", KILLED_OWNER, str(data)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "committed"
        assert wait_for(lambda: compaction_children(owner.pid))
        (child,) = compaction_children(owner.pid)
        assert wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child) >= 10)  # past prctl
        os.kill(child, signal.SIGSTOP)  # it cannot finish on its own meanwhile

        # when the owner is killed
        owner.kill()
        owner.wait()

        # then its child dies with it, and the next owner finds every commit
        assert wait_for(lambda: not Path(f"/proc/{child}").exists() or _zombie(child), 5)
    finally:
        owner.kill()
        for pid in compaction_children(owner.pid) + compaction_children(1):
            os.kill(pid, signal.SIGKILL)  # a child that survived (the test failed)
    assert open_store(opened, data).load(SHARD) == state_after(21, **BIG)
    assert listing(data).tmps == []


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
