"""One logical shard's directory in the embedded backend: lock, log generations, the open log.

Layout of `<data_dir>/shard-NN/`:

    LOCK                    flock'ed while a process owns the shard
    snap-G.snap             the state before log generation G (absent until the first compaction)
    log-G.log, log-G+1.log  committed records since that snapshot; the highest is written to

A state is the newest snapshot plus every log of generation >= its own, replayed in order.
Compaction (see `_compaction`) only ever adds a newer snapshot and then deletes what it
supersedes, so whatever moment a crash interrupts it at, that rule still finds the state.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import logging
import os
import re
import threading
from collections.abc import Iterator
from typing import Final, final

import attrs

from flashq.errors import StorageError
from shards.storage._records import (
    LOG_MAGIC,
    TornTail,
    apply_log,
    apply_snapshot,
    fsync_dir,
    write_all,
)

logger = logging.getLogger(__name__)

LOCK_NAME: Final = "LOCK"
_FILE_NAME: Final = re.compile(r"^(log|snap)-(\d{10})\.(?:log|snap)(\.tmp)?$")


def log_name(gen: int) -> str:
    return f"log-{gen:010d}.log"


def snap_name(gen: int) -> str:
    return f"snap-{gen:010d}.snap"


@final
@attrs.frozen
class Listing:
    """The generation files found in a shard directory, each list sorted."""

    snaps: list[int]
    logs: list[int]
    tmps: list[str]

    @classmethod
    def of(cls, path: str) -> Listing:
        snaps: list[int] = []
        logs: list[int] = []
        tmps: list[str] = []
        for name in os.listdir(path):
            match = _FILE_NAME.match(name)
            if match is None:
                continue
            kind, gen, tmp = match.groups()
            if tmp:
                tmps.append(name)
            else:
                (logs if kind == "log" else snaps).append(int(gen))
        return cls(sorted(snaps), sorted(logs), sorted(tmps))


@final
class ShardDir:
    """An owned (locked) shard directory with its newest log open for appending.

    `append`/`sync`/`rotate` run in the committing thread; compaction runs in another and
    reports back through `snapshot_installed`; `meta_lock` guards the accounting both touch.
    `compaction_lock` is held for a whole compaction so a re-read never sees files vanish.
    """

    def __init__(self, path: str, shard: int, lock_fd: int) -> None:
        self.path = path
        self.shard = shard
        self._lock_fd = lock_fd
        self._log_fd = -1
        self.log_gen = 0
        self.log_size = 0
        self.older_log_bytes = 0
        self.snap_gen = 0
        self.snap_bytes = 0
        self.compacting = False
        self.retry_after_bytes = 0
        self.broken: str | None = None
        self.meta_lock = threading.Lock()
        self.compaction_lock = threading.Lock()

    @classmethod
    def open(cls, path: str, shard: int) -> tuple[ShardDir, dict[str, bytes], TornTail | None]:
        """Lock the directory, load its state, cut a torn tail, open the newest log.

        Raises:
            StorageError: another process holds the shard, or its files are damaged.
        """
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            fsync_dir(os.path.dirname(path))  # or a power loss could forget the directory
        self = cls(path, shard, _lock(path, shard))
        try:
            found = self._replay(first_open=True)
            self.snap_gen, self.snap_bytes = found.snap_gen, found.snap_bytes
            self.log_gen, self.older_log_bytes = found.last_gen, found.older_log_bytes
            self._remove_superseded()
            self._open_writer()
        except BaseException:
            self.close()
            raise
        return self, found.state, found.torn

    def read_state(self) -> dict[str, bytes]:
        """Re-read the committed state of a shard this process already owns (no repairs)."""
        with self.compaction_lock:
            return self._replay(first_open=False).state

    @property
    def log_bytes(self) -> int:
        """Bytes of log a restart would replay on top of the snapshot (0 for a fresh log)."""
        return self.older_log_bytes + self.log_size - len(LOG_MAGIC)

    def append(self, record: bytes) -> None:
        """Append one whole record, or raise and leave the log as it was."""
        if self.broken is not None:
            raise StorageError(self.broken)
        try:
            write_all(self._log_fd, record)
        except OSError as exc:
            where = os.path.join(self.path, log_name(self.log_gen))
            try:
                os.ftruncate(self._log_fd, self.log_size)
            except OSError as undo_exc:
                # A partial record must not be followed by whole ones: refuse further writes.
                self.broken = f"{where}: write failed and could not be undone ({undo_exc})"
            raise StorageError(f"{where}: write failed: {exc}") from exc
        self.log_size += len(record)

    def sync(self) -> None:
        try:
            os.fdatasync(self._log_fd)
        except OSError as exc:
            raise StorageError(f"shard {self.shard}: fdatasync failed: {exc}") from exc

    def rotate(self) -> int:
        """Start a new log generation; return it. Earlier logs are complete and synced."""
        new_gen = self.log_gen + 1
        new_fd = self._create_log(new_gen)
        old_fd = self._log_fd
        try:
            os.fdatasync(old_fd)
        except OSError:
            os.close(new_fd)
            raise
        os.close(old_fd)
        with self.meta_lock:
            self._log_fd = new_fd
            self.older_log_bytes += self.log_size
            self.log_gen = new_gen
            self.log_size = len(LOG_MAGIC)
        return new_gen

    def snapshot_installed(self, gen: int, size: int) -> None:
        """A snapshot of everything before log `gen` is in place: earlier logs don't count."""
        with self.meta_lock:
            self.snap_gen = gen
            self.snap_bytes = size
            self.older_log_bytes = 0

    def close(self) -> None:
        for fd in (self._log_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._log_fd = self._lock_fd = -1

    def _replay(self, *, first_open: bool) -> _Replayed:
        with _gc_paused():
            return self._replay_files(first_open=first_open)

    def _replay_files(self, *, first_open: bool) -> _Replayed:
        listing = Listing.of(self.path)
        snap_gen = listing.snaps[-1] if listing.snaps else 0
        logs = [gen for gen in listing.logs if gen >= snap_gen]
        first = snap_gen or 1
        if logs and logs != list(range(first, first + len(logs))):
            raise StorageError(
                f"{self.path}: log generations {logs} do not follow snapshot generation "
                f"{snap_gen} without a gap; a log file is missing"
            )
        found = _Replayed(snap_gen=snap_gen, last_gen=logs[-1] if logs else first)
        if snap_gen:
            snap_path = os.path.join(self.path, snap_name(snap_gen))
            apply_snapshot(found.state, snap_path)
            found.snap_bytes = os.path.getsize(snap_path)
        for gen in logs:
            path = os.path.join(self.path, log_name(gen))
            last = gen == logs[-1]
            reader = apply_log(found.state, path, allow_torn_tail=last and first_open)
            if reader.torn is not None:
                found.torn = reader.torn
                self._cut(path, reader.end, reader.torn)
            if not last:
                found.older_log_bytes += reader.end
        return found

    def _cut(self, path: str, end: int, torn: TornTail) -> None:
        logger.warning(
            "cutting torn tail of %s at offset %d (%d bytes dropped): %s",
            path, end, torn.dropped_bytes, torn.reason,
        )  # fmt: skip
        with open(path, "r+b") as file:
            file.truncate(end)
            os.fsync(file.fileno())

    def _remove_superseded(self) -> None:
        """Delete what an interrupted compaction left: temp files, superseded generations."""
        listing = Listing.of(self.path)
        doomed = list(listing.tmps)
        doomed += [snap_name(gen) for gen in listing.snaps if gen < self.snap_gen]
        doomed += [log_name(gen) for gen in listing.logs if gen < self.snap_gen]
        for name in doomed:
            logger.info("removing superseded %s", os.path.join(self.path, name))
            os.unlink(os.path.join(self.path, name))
        if doomed:
            fsync_dir(self.path)

    def _open_writer(self) -> None:
        path = os.path.join(self.path, log_name(self.log_gen))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            self._log_fd = self._create_log(self.log_gen)
            self.log_size = len(LOG_MAGIC)
            return
        self._log_fd = fd
        self.log_size = os.fstat(fd).st_size
        if self.log_size == 0:  # created but its header never written, or a torn one cut
            write_all(fd, LOG_MAGIC)
            self.log_size = len(LOG_MAGIC)

    def _create_log(self, gen: int) -> int:
        path = os.path.join(self.path, log_name(gen))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, LOG_MAGIC)
            os.fdatasync(fd)
            fsync_dir(self.path)
        except OSError:
            os.close(fd)
            raise
        return fd


@attrs.define
class _Replayed:
    """What replaying a shard directory found."""

    snap_gen: int
    last_gen: int
    state: dict[str, bytes] = attrs.Factory(dict)
    snap_bytes: int = 0
    older_log_bytes: int = 0
    torn: TornTail | None = None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a load creates millions of acyclic objects.

    Each allocation burst would otherwise trigger collections that walk the growing state
    dict again and again: measured ~30% of a 1M-record load. Loads run at startup, before
    the shard serves anything, so postponing cycle collection for a second costs nothing.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _lock(path: str, shard: int) -> int:
    """Take the shard's exclusive lock, so two processes never write one shard."""
    fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StorageError(f"shard {shard} at {path} is in use by another process") from exc
        raise StorageError(f"cannot lock shard {shard} at {path}: {exc}") from exc
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd
