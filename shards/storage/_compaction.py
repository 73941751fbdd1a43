"""Compaction: fold a shard's snapshot and older logs into a new snapshot, crash-safely.

The steps, each a point where a crash may stop it (the loading rule of `_shard_dir` finds
the whole state after every one of them):

1. `rotate` (in the committing thread): new commits go to log U; logs before U are synced.
   Hook "rotated" (called by the storage).
2. Read snapshot S and logs S..U-1 into one dict: one shard at a time, never all of them.
3. Write `snap-U.snap.tmp` in chunks and fsync it. Hooks "snapshot-partial" (after the
   first chunk) and "snapshot-synced".
4. Rename it to `snap-U.snap`, fsync the directory. Hook "renamed".
5. Delete snap-S and logs S..U-1. Hook "deleted-one" (after the first deletion).

The hooks are a test seam (a child process exits at one of them to simulate a crash).

In a server, steps 2-3 (all the reading, decoding and re-encoding) run in a child process
at low CPU priority (`python -m shards.storage._fold_child`), not in a thread: a thread held
the GIL against the shard process's event loop, 37-45% of its samples under py-spy while a
shard with 10 KB jobs compacted, and every request waited behind it. The child dies with
the thread that waits for it (PR_SET_PDEATHSIG), so a killed shard process leaves no writer.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from itertools import islice
from typing import Final, TypeAlias, final

from flashq.errors import StorageError
from shards.storage._records import (
    SNAP_MAGIC,
    apply_log,
    apply_snapshot,
    encode_snapshot_chunk,
    encode_snapshot_trailer,
    fsync_dir,
    write_all,
)
from shards.storage._shard_dir import ShardDir, log_name, snap_name

logger = logging.getLogger(__name__)

CompactionHook: TypeAlias = Callable[[str], None]

#: Entries per snapshot record: ~0.5-1 MiB records at typical job sizes, so the reader's
#: per-record overhead vanishes and the writer never builds one huge buffer.
SNAPSHOT_CHUNK: Final = 4096


def no_hook(step: str) -> None:
    """The default hook: compaction steps are not observed."""


def compact_shard(
    shard: ShardDir,
    upto: int,
    *,
    should_stop: Callable[[], bool],
    hook: CompactionHook,
    in_child: bool = False,
) -> bool:
    """Replace the shard's snapshot and logs before generation `upto` by `snap-<upto>`.

    `in_child`: fold in a child process (`fold_in_child`) instead of this thread.
    Returns False if `should_stop` asked to abandon it (nothing changed on disk).
    Raises OSError or StorageError on failure; the old files are then still in place.
    """
    with shard.compaction_lock:
        base = shard.snap_gen
        superseded = [snap_name(base)] if base else []
        superseded += [log_name(gen) for gen in range(base or 1, upto)]
        final_path = os.path.join(shard.path, snap_name(upto))
        tmp_path = final_path + ".tmp"
        try:
            if in_child:
                folded = fold_in_child(shard.path, base, upto, tmp_path, should_stop)
            else:
                folded = fold(shard.path, base, upto, tmp_path, should_stop, hook)
            if folded is None:
                return False
            size, entries = folded
            hook("snapshot-synced")
            os.replace(tmp_path, final_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_path)
            raise
        hook("renamed")
        fsync_dir(shard.path)
        shard.snapshot_installed(upto, size)
        for index, name in enumerate(superseded):
            os.unlink(os.path.join(shard.path, name))
            if index == 0:
                hook("deleted-one")
        fsync_dir(shard.path)
    logger.info(
        "compacted shard %d: snapshot %s, %d entries, %d bytes; %d files removed",
        shard.shard, final_path, entries, size, len(superseded),
    )  # fmt: skip
    return True


def fold(
    path: str,
    base: int,
    upto: int,
    tmp_path: str,
    should_stop: Callable[[], bool],
    hook: CompactionHook = no_hook,
) -> tuple[int, int] | None:
    """Steps 2-3: snapshot `base` (0: none) and logs base..upto-1 of the shard directory
    `path` into the synced file `tmp_path`; its (size, entries), or None if told to stop."""
    state: dict[str, bytes] = {}
    if base:
        apply_snapshot(state, os.path.join(path, snap_name(base)))
    for gen in range(base or 1, upto):
        apply_log(state, os.path.join(path, log_name(gen)), allow_torn_tail=False)
    size = _write_snapshot(tmp_path, state, should_stop, hook)
    return None if size is None else (size, len(state))


#: The child's module: it only calls `child_main` (running this module itself with -m would
#: execute it twice, as the package imports it first).
_FOLD_CHILD: Final = "shards.storage._fold_child"
#: Seconds between checks of `should_stop` while a child folds.
_CHILD_POLL_S: Final = 0.1


def fold_in_child(
    path: str, base: int, upto: int, tmp_path: str, should_stop: Callable[[], bool]
) -> tuple[int, int] | None:
    """`fold` in a child process; killed (leaving `tmp_path` to the caller) if told to stop.

    Raises:
        StorageError: the child failed (its last stderr lines say why).
    """
    argv = [sys.executable, "-m", _FOLD_CHILD, str(os.getpid()), path, str(base), str(upto)]
    child = subprocess.Popen(
        [*argv, tmp_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while True:
        try:
            out, err = child.communicate(timeout=_CHILD_POLL_S)
            break
        except subprocess.TimeoutExpired:
            if should_stop():
                child.kill()
                child.communicate()
                return None
    if child.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise StorageError(f"compaction process exited with {child.returncode}: {tail}")
    size, entries = out.split()
    return int(size), int(entries)


def child_main(argv: list[str]) -> int:
    """`python -m shards.storage._fold_child PARENT PATH BASE UPTO TMP`: print size, entries."""
    parent, path, base, upto, tmp_path = argv
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before the line above
        return 1
    os.nice(10)  # only idle CPU: the shard process's requests come first
    folded = fold(path, int(base), int(upto), tmp_path, lambda: False)
    assert folded is not None
    sys.stdout.write(f"{folded[0]} {folded[1]}\n")
    return 0


def _write_snapshot(
    path: str, state: dict[str, bytes], should_stop: Callable[[], bool], hook: CompactionHook
) -> int | None:
    """Write and fsync a snapshot file; its size, or None (and no file) if told to stop."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, SNAP_MAGIC)
        size = len(SNAP_MAGIC)
        items = iter(state.items())
        while chunk := list(islice(items, SNAPSHOT_CHUNK)):
            if should_stop():
                break
            record = encode_snapshot_chunk(chunk)
            write_all(fd, record)
            if size == len(SNAP_MAGIC):
                hook("snapshot-partial")
            size += len(record)
        else:
            record = encode_snapshot_trailer(len(state))
            write_all(fd, record)
            os.fsync(fd)
            return size + len(record)
    finally:
        os.close(fd)
    os.unlink(path)
    return None


@final
class Compactor:
    """Runs compactions one at a time, in a background thread or in the caller's.

    A failed compaction is logged and counted, never raised into a commit (the logs still
    hold everything); it is retried once the shard's log has grown by `retry_gap_bytes`.
    """

    def __init__(
        self, *, hook: CompactionHook, retry_gap_bytes: int, in_child: bool = False
    ) -> None:
        self._hook = hook
        self._in_child = in_child
        self._retry_gap_bytes = retry_gap_bytes
        self._queue: queue.SimpleQueue[tuple[ShardDir, int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0
        self.completed = 0
        self.failed = 0

    def run(self, shard: ShardDir, upto: int) -> None:
        """Compact `shard` up to log generation `upto` now, in this thread."""
        try:
            stop = self._stopping.is_set
            if compact_shard(
                shard, upto, should_stop=stop, hook=self._hook, in_child=self._in_child
            ):
                self.completed += 1
        except Exception:
            logger.exception("compaction of shard %d failed; its logs are kept", shard.shard)
            self.failed += 1
            shard.retry_after_bytes = shard.log_bytes + self._retry_gap_bytes
        finally:
            shard.compacting = False

    def submit(self, shard: ShardDir, upto: int) -> None:
        """Queue a compaction for the background thread (started on first use)."""
        with self._idle:
            self._pending += 1
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name="flashq-storage-compactor", daemon=True
            )
            self._thread.start()
        self._queue.put((shard, upto))

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no compaction is queued or running; False if `timeout_s` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def stop(self) -> None:
        """Abandon queued and running compactions (they leave no trace) and join the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            shard, upto = job
            try:
                if self._stopping.is_set():
                    shard.compacting = False
                else:
                    self.run(shard, upto)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
