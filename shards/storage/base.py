"""The Storage protocol: the contract every backend of a shard process fulfils.

The shard process groups every mutation of one event-loop batch into one `commit()` and
releases the replies only after it returns, so a backend's commit latency is the reply
latency under load and its records/s bound the server's throughput.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, Protocol, TypeAlias, final

import attrs

from flashq.protocol.routing import NSHARDS

#: `{shard: {key: value, or None to delete}}`: one commit's changes, grouped by logical shard.
Changes: TypeAlias = Mapping[int, Mapping[str, bytes | None]]

FsyncPolicy: TypeAlias = Literal["never", "always"]

_EMPTY: Mapping[int, int] = MappingProxyType({})


@final
@attrs.frozen
class StorageStats:
    """A snapshot of a backend's counters, for /metrics and the dashboard.

    Latencies are microseconds of wall time spent inside `commit()`; byte counts are what the
    backend wrote (log records including their headers for the embedded backend, keys plus
    values for the memory backend).
    """

    backend: str
    commits: int = 0
    records_written: int = 0
    bytes_written: int = 0
    last_commit_us: float = 0.0
    avg_commit_us: float = 0.0
    max_commit_us: float = 0.0
    compactions: int = 0
    compaction_errors: int = 0
    torn_tails_cut: int = 0
    shards_open: tuple[int, ...] = ()
    #: Per open shard: bytes of log written since its latest snapshot (what a restart replays).
    log_bytes: Mapping[int, int] = _EMPTY
    #: Per open shard: size of its latest snapshot (0 when it has none yet).
    snapshot_bytes: Mapping[int, int] = _EMPTY


class Storage(Protocol):
    """Durable key/value state of the logical shards a process owns.

    Keys are short strings chosen by the engine, values opaque bytes. Each logical shard
    (0..31) is stored apart from the others, so the number of shard processes can change
    between restarts.
    """

    def load(self, shard: int) -> dict[str, bytes]:
        """Return the committed state of one logical shard (empty if it was never written).

        Called before any `commit()` touching that shard. The returned dict belongs to the
        caller; the backend keeps no reference to it.

        Raises:
            StorageError: the stored state is unreadable or corrupt (message names the file).
        """
        ...

    def commit(self, changes: Changes) -> None:
        """Apply `{shard: {key: value or None (delete)}}` durably.

        Atomic per shard: after a crash, each shard holds either all of this call's changes
        for it or none. On return the changes survive the loss of the process (fsync policy
        "never") or of the machine (policy "always"). Called from one worker thread at a
        time, never concurrently with itself.

        Raises:
            StorageError: the write failed; shards not yet written keep their previous state.
        """
        ...

    def close(self) -> None:
        """Release files and locks; idempotent. Nothing committed is lost by closing."""
        ...

    def statistics(self) -> StorageStats:
        """Return a frozen snapshot of the counters."""
        ...


def check_shard(shard: int) -> None:
    """Reject a shard number outside 0..NSHARDS-1 (a routing bug, not bad client input)."""
    if not 0 <= shard < NSHARDS:
        raise ValueError(f"logical shard must be in 0..{NSHARDS - 1}, got {shard!r}")


@attrs.define
class CommitCounters:
    """Commit counters shared by the backends: `start()` before a commit, `finish()` after."""

    commits: int = 0
    records: int = 0
    bytes: int = 0
    last_us: float = 0.0
    total_us: float = 0.0
    max_us: float = 0.0

    def start(self) -> int:
        return time.perf_counter_ns()

    def finish(self, started_ns: int, records: int, nbytes: int) -> None:
        elapsed_us = (time.perf_counter_ns() - started_ns) / 1000
        self.commits += 1
        self.records += records
        self.bytes += nbytes
        self.last_us = elapsed_us
        self.total_us += elapsed_us
        self.max_us = max(self.max_us, elapsed_us)

    def stats(self, backend: str) -> StorageStats:
        return StorageStats(
            backend=backend,
            commits=self.commits,
            records_written=self.records,
            bytes_written=self.bytes,
            last_commit_us=self.last_us,
            avg_commit_us=self.total_us / self.commits if self.commits else 0.0,
            max_commit_us=self.max_us,
        )
