"""Deterministic commit batches shared by the tests and the child processes they start."""

from __future__ import annotations

import random


def batch(n: int, *, size: int = 1000, key_space: int = 8000) -> dict[str, bytes | None]:
    """Batch number `n`: `size` keys drawn from `key_space`, one in seven a delete."""
    rng = random.Random(n)
    out: dict[str, bytes | None] = {}
    for _ in range(size):
        key = f"j:{rng.randrange(key_space)}"
        out[key] = None if rng.randrange(7) == 0 else f"batch {n} {key} ".encode() * 3
    return out


def apply(state: dict[str, bytes], changes: dict[str, bytes | None]) -> None:
    for key, value in changes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value


def state_after(count: int, **options: int) -> dict[str, bytes]:
    """The state once batches 0..count-1 are applied."""
    state: dict[str, bytes] = {}
    for n in range(count):
        apply(state, batch(n, **options))
    return state
