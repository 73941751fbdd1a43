"""The pure, synchronous job engine of one logical shard: no I/O, no clock reads.

`ShardEngine` is the whole public surface (docs/internals.md §shards/engine); the modules
beside it are one idea each: `job` (record, wire object, codec), `pqueue` (indexed heap),
`queue` (per-queue state), `waiters`, `state` and `lifecycle` (transitions), then one module
per command group.
"""

from __future__ import annotations

from .config import EngineConfig as EngineConfig
from .shard import EngineStats as EngineStats
from .shard import ShardEngine as ShardEngine

__all__ = ["EngineConfig", "EngineStats", "ShardEngine"]
