"""Workers seen: TCP connections that pull jobs, and HTTP workers that send heartbeats.

Shown by GET /workers, the dashboard and Prometheus (`flashq_workers_active`).
"""

from __future__ import annotations

import time
from typing import Any, Final

import attrs

#: A worker not seen for this long is forgotten (PROTOCOL §3.5 WorkerInfo, "last 30 s").
WORKER_TTL_MS: Final = 30_000
#: Bound on the registry, so a client inventing worker ids cannot grow memory.
MAX_WORKERS: Final = 10_000


def wall_ms() -> int:
    return int(time.time() * 1000)


@attrs.define
class WorkerRegistry:
    """Workers by id, most recently seen last."""

    workers: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def heartbeat(
        self, worker_id: str, queues: list[str], concurrency: int, processed: int, now_ms: int
    ) -> None:
        self.workers.pop(worker_id, None)
        self.workers[worker_id] = {
            "id": worker_id,
            "queues": queues,
            "concurrency": concurrency,
            "last_heartbeat": now_ms,
            "jobs_processed": processed,
        }
        while len(self.workers) > MAX_WORKERS:
            del self.workers[next(iter(self.workers))]

    def live(self, now_ms: int) -> list[dict[str, Any]]:
        """Workers seen in the last 30 s, most recent first; older ones are forgotten."""
        for wid in [w for w, info in self.workers.items()
                    if now_ms - info["last_heartbeat"] > WORKER_TTL_MS]:  # fmt: skip
            del self.workers[wid]
        return list(reversed(self.workers.values()))

    def seen_pulling(self, worker_id: str, queue: str, now_ms: int) -> None:
        """A TCP connection pulled from `queue`: it is (or is part of) a worker."""
        info = self.workers.get(worker_id)
        if info is None:
            self.heartbeat(worker_id, [queue], 0, 0, now_ms)
            return
        if queue not in info["queues"]:
            info["queues"] = [*info["queues"], queue]
        info["last_heartbeat"] = now_ms

    def processed(self, worker_id: str, n: int) -> None:
        info = self.workers.get(worker_id)
        if info is not None:
            info["jobs_processed"] += n
