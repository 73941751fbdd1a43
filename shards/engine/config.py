"""Tunables of one shard engine, each with the reason for its default."""

from __future__ import annotations

import attrs


@attrs.frozen
class EngineConfig:
    """Limits and defaults of a `ShardEngine`; one frozen value shared by every shard."""

    nshards: int = 32
    """Logical shards in the cluster: job ids are ``seq * nshards + shard``."""
    max_completed: int = 5000
    """Completed jobs (with results) one shard keeps for GETRESULT/GETJOBS; the oldest go first.
    Upstream keeps a browsable ring of 5 000 for the whole server; per shard is cheap enough."""
    max_job_logs: int = 100
    """LOG entries kept per job (upstream)."""
    default_stall_timeout_ms: int = 30_000
    """Stall window when a job says 0 (upstream)."""
    max_stalls: int = 3
    """The n-th stall detection moves the job to the DLQ (upstream)."""
    max_batch_jobs: int = 1000
    """PUSHB with more jobs pushes nothing (upstream)."""
    max_getjobs_limit: int = 1000
    """GETJOBS `limit` cap (upstream)."""
    default_debounce_ttl_ms: int = 5000
    default_pull_timeout_ms: int = 60_000
    default_wait_timeout_ms: int = 30_000
    pushb_events: bool = True
    """Publish a `pushed` event per PUSHB job (upstream publishes none; webhooks want them)."""
