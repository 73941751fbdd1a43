"""Durable state of the logical shards: the Storage protocol and its backends.

`open_storage` builds the backend the configuration names. The embedded backend is the
default; the memory backend persists nothing and is only used when asked for.
"""

from __future__ import annotations

from shards.storage.base import Changes as Changes
from shards.storage.base import FsyncPolicy as FsyncPolicy
from shards.storage.base import Storage as Storage
from shards.storage.base import StorageStats as StorageStats
from shards.storage.embedded import EmbeddedStorage as EmbeddedStorage
from shards.storage.memory import MemoryStorage as MemoryStorage

#: Where the embedded backend keeps its files when no directory is given (DESIGN.md).
DEFAULT_DATA_DIR = "./flashq-data"


def open_storage(kind: str, data_dir: str | None, fsync: str) -> Storage:
    """Build the storage backend named `kind` ("embedded" or "memory").

    Args:
        kind: "embedded" (files under `data_dir`) or "memory" (nothing persisted).
        data_dir: the embedded backend's directory; None means DEFAULT_DATA_DIR. Ignored by
            the memory backend.
        fsync: "never" or "always" (see EmbeddedStorage); ignored by the memory backend.

    The caller owns the result and must `close()` it.

    Raises:
        ValueError: unknown `kind` or `fsync`.
        StorageError: the data directory cannot be created.
    """
    if fsync not in ("never", "always"):
        raise ValueError(f"fsync policy must be 'never' or 'always', got {fsync!r}")
    if kind == "memory":
        return MemoryStorage()
    if kind == "embedded":
        policy: FsyncPolicy = "always" if fsync == "always" else "never"
        return EmbeddedStorage(data_dir if data_dir is not None else DEFAULT_DATA_DIR, fsync=policy)
    raise ValueError(f"unknown storage backend {kind!r}; expected 'embedded' or 'memory'")
