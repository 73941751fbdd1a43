"""Latency histograms with fixed buckets, kept by the shard engines and merged for metrics.

Each shard engine records push → completion latency per queue as it completes jobs (it knows
both times), so the numbers cover every job, batch-pushed ones included, and cost no event
traffic; the acceptor adds the processes' histograms up for Prometheus and the dashboard.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

#: Bucket upper bounds in milliseconds (push → completed spans ms to minutes).
LATENCY_BUCKETS_MS: Final = (
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000,
)  # fmt: skip


@attrs.define
class Histogram:
    """Counts per bucket (not cumulative; the last slot is +Inf), with sum and count."""

    counts: list[int] = attrs.field(factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS_MS, value_ms)] += 1
        self.total += value_ms
        self.count += 1

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (None when empty or in +Inf)."""
        if not self.count:
            return None
        rank = q * self.count
        for bound, seen in zip(LATENCY_BUCKETS_MS, self.cumulative(), strict=False):
            if seen >= rank:
                return float(bound)
        return None

    def plain(self) -> list[Any]:
        """`[counts, total, count]`, the form that crosses the link (`from_plain` reads it)."""
        return [self.counts, self.total, self.count]

    @classmethod
    def from_plain(cls, value: Sequence[Any]) -> Histogram:
        counts, total, count = value
        if len(counts) != len(LATENCY_BUCKETS_MS) + 1:
            raise ValueError("histogram with other buckets")
        return cls([int(n) for n in counts], float(total), int(count))

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        self.count += other.count


def merge(parts: Iterable[tuple[str, Sequence[Any]]]) -> dict[str, Histogram]:
    """Add up `(queue, plain histogram)` pairs per queue; malformed ones are skipped."""
    out: dict[str, Histogram] = {}
    for queue, plain in parts:
        try:
            hist = Histogram.from_plain(plain)
        except (TypeError, ValueError):
            continue
        if queue in out:
            out[queue].add(hist)
        else:
            out[queue] = hist
    return out
