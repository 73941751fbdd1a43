"""Queue-name and payload-size rules with upstream's error texts (PROTOCOL.md §4)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given

from flashq.protocol.commands import (
    MAX_JOB_DATA_BYTES,
    estimate_json_size,
    validate_job_data,
    validate_queue_name,
)
from tests.strategies import estimate_exact_values, json_values

EMPTY = "Queue name cannot be empty"
TOO_LONG = "Queue name too long (max 256 chars)"
BAD_CHARS = "Queue name must contain only alphanumeric characters, underscores, hyphens, or dots"


@pytest.mark.parametrize(
    "name",
    ["emails", "a", "my-queue", "my_queue", "my.queue", "queue123", "x" * 256, "café", "队列", "٣"],
)
def test_valid_queue_names(name: str) -> None:
    assert validate_queue_name(name) is None
    assert validate_queue_name(name) is None  # and again, from the cache of valid names


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", EMPTY),
        ("x" * 257, TOO_LONG),
        # 129 two-byte characters: 258 bytes, the limit is in bytes (Rust's str::len)
        ("é" * 129, TOO_LONG),
        ("é" * 128, None),
        ("my queue", BAD_CHARS),
        ("my/queue", BAD_CHARS),
        ("my@queue", BAD_CHARS),
        ("tab\tq", BAD_CHARS),
        ("emoji😀", BAD_CHARS),
        # too long wins over bad characters, as upstream checks length first
        ("!" * 300, TOO_LONG),
    ],
)
def test_queue_name_errors(name: str, error: str | None) -> None:
    assert validate_queue_name(name) == error


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, 4),
        (True, 4),
        (False, 5),
        (0, 20),
        (-(2**63), 20),
        (2**64 - 1, 20),
        (1.5, 24),
        (1.0, 24),  # a float, even when integral
        ("", 2),
        ("xy", 4),
        ("é", 4),  # UTF-8 bytes (2) + quotes
        ('a"b', 5),  # escapes are not counted
        ([], 2),
        ([1, 2], 2 + 20 + 1 + 20),
        ({}, 2),
        ({"a": "xy"}, 10),  # exactly len('{"a":"xy"}')
        ({"a": 1, "bc": None}, 2 + (1 + 3 + 20) + 1 + (2 + 3 + 4)),
        ({"é": []}, 2 + (2 + 3 + 2)),
        ({"n": [True, {"k": False}]}, 2 + (1 + 3 + (2 + 4 + 1 + (2 + 1 + 3 + 5)))),
    ],
)
def test_estimate_json_size(value: Any, size: int) -> None:
    assert estimate_json_size(value) == size


@given(value=estimate_exact_values)
def test_estimate_is_exact_without_numbers_or_escapes(value: Any) -> None:
    # Brackets, commas, colons and quotes are counted as compact JSON writes them.
    assert estimate_json_size(value) == len(orjson.dumps(value))


@given(value=json_values)
def test_estimate_never_fails_on_wire_values(value: Any) -> None:
    assert estimate_json_size(value) >= len(orjson.dumps(value)) // 6


def test_estimate_handles_deep_nesting_and_msgpack_values() -> None:
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    assert estimate_json_size(deep) == 50_000 * 2 + 3
    assert estimate_json_size(b"\x00\x01") == 4  # bin: like a string of its length
    assert estimate_json_size((1, 2)) == estimate_json_size([1, 2])


def test_job_data_size_limit() -> None:
    # A string of n characters is estimated at n + 2 bytes.
    assert validate_job_data("x" * (MAX_JOB_DATA_BYTES - 2)) is None
    assert validate_job_data("x" * (MAX_JOB_DATA_BYTES - 1)) == (
        "Job data too large (~10485761 bytes, max 10485760 bytes)"
    )


def test_job_data_size_limit_counts_numbers_at_20_bytes() -> None:
    # [0] * n is 2n + 1 bytes of JSON but estimated at 2 + 20n + (n - 1) = 21n + 1 bytes.
    n = (MAX_JOB_DATA_BYTES - 1) // 21
    assert validate_job_data([0] * n) is None
    assert validate_job_data([0] * (n + 1)) == (
        f"Job data too large (~{21 * (n + 1) + 1} bytes, max 10485760 bytes)"
    )
    # bin values have no JSON form; they are estimated like strings.
    assert validate_job_data({"b": b"x" * 100}) is None
    assert validate_job_data(b"x" * (MAX_JOB_DATA_BYTES - 1)) is not None


@given(value=json_values)
def test_job_data_fast_path_agrees_with_the_estimate(value: Any) -> None:
    # The ratio behind the fast path: no estimate exceeds 20x the compact JSON length.
    assert estimate_json_size(value) <= 20 * len(orjson.dumps(value))
