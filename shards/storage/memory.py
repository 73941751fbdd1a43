"""In-memory storage: the Storage contract without persistence, for tests and benchmarks.

Only used when asked for explicitly (`--storage memory`): everything is gone when the
process exits.
"""

from __future__ import annotations

import threading
from typing import final

import attrs

from flashq.errors import StorageError
from shards.storage.base import Changes, CommitCounters, StorageStats, check_shard


@final
class MemoryStorage:
    """One dict per logical shard; `load()` hands out copies so callers can't alias it."""

    def __init__(self) -> None:
        self._shards: dict[int, dict[str, bytes]] = {}
        self._counters = CommitCounters()
        self._lock = threading.Lock()
        self._closed = False

    def load(self, shard: int) -> dict[str, bytes]:
        check_shard(shard)
        with self._lock:
            self._check_open()
            return dict(self._shards.setdefault(shard, {}))

    def commit(self, changes: Changes) -> None:
        started = self._counters.start()
        records = nbytes = 0
        with self._lock:
            self._check_open()
            for shard in changes:
                check_shard(shard)
            for shard, batch in changes.items():
                state = self._shards.setdefault(shard, {})
                for key, value in batch.items():
                    if value is None:
                        state.pop(key, None)
                        nbytes += len(key)
                    else:
                        state[key] = value
                        nbytes += len(key) + len(value)
                records += len(batch)
            self._counters.finish(started, records, nbytes)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def statistics(self) -> StorageStats:
        with self._lock:
            stats = self._counters.stats("memory")
            return attrs.evolve(stats, shards_open=tuple(sorted(self._shards)))

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory storage is closed")
