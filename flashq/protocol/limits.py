"""The value limits of PROTOCOL.md §4.1 that PUSH-like commands apply, with upstream's texts.

They are not applied by `normalize` (PUSHB skips a job where PUSH fails, cron firing fails
silently), so the engine calls them where the command's semantics say. Re-exported by
`flashq.protocol.commands`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

MAX_QUEUE_NAME_BYTES: Final = 256
MAX_JOB_DATA_BYTES: Final = 10_485_760
MAX_BATCH_JOBS: Final = 1000
"""PUSHB with more jobs than this pushes nothing (`ids: []`)."""
KV_MAX_BATCH: Final = 1000
"""KVMSET with more entries fails ("Too many entries"); KVMGET answers only this many keys."""

QUEUE_NAME_EMPTY: Final = "Queue name cannot be empty"
QUEUE_NAME_TOO_LONG: Final = f"Queue name too long (max {MAX_QUEUE_NAME_BYTES} chars)"
QUEUE_NAME_BAD_CHARS: Final = (
    "Queue name must contain only alphanumeric characters, underscores, hyphens, or dots"
)

_ASCII_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_SEPARATORS: Final = frozenset("_-.")

# Names already found valid: a push validates the same few names over and over, and a set
# lookup is several times cheaper than the regex. Bounded so random names cannot grow it.
_valid_names: set[str] = set()
_VALID_NAMES_MAX: Final = 4096


def validate_queue_name(name: str) -> str | None:
    """Upstream's queue-name rule; returns the error text, or None when `name` is valid.

    Non-empty, at most 256 UTF-8 bytes, every character alphanumeric (Unicode letters and
    digits count, as Rust's `char::is_alphanumeric`) or one of `_ - .`.
    """
    if name in _valid_names:
        return None
    if _ASCII_QUEUE_NAME.fullmatch(name) is None:
        if not name:
            return QUEUE_NAME_EMPTY
        if len(name.encode("utf-8", "surrogatepass")) > MAX_QUEUE_NAME_BYTES:
            return QUEUE_NAME_TOO_LONG
        for ch in name:
            if not (ch.isalnum() or ch in _SEPARATORS):
                return QUEUE_NAME_BAD_CHARS
    if len(_valid_names) >= _VALID_NAMES_MAX:
        _valid_names.clear()
    _valid_names.add(name)
    return None


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def estimate_json_size(value: Any) -> int:
    """Upstream's cheap estimate of the JSON size of `value`, in bytes (PROTOCOL.md §4.1).

    Strings count their UTF-8 length + 2 (escapes are not counted), integers 20, floats 24,
    `null`/`true` 4, `false` 5; arrays and objects add their brackets and commas, and each
    key its length + 3 (quotes and colon). So `{"a": "xy"}` is 2 + (1 + 3 + 4) = 10.
    Iterative, so deeply nested data cannot exhaust the Python stack.
    """
    total = 0
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            total += _utf8_len(item) + 2
        elif kind is int:
            total += 20
        elif kind is dict:
            count = len(item)
            total += 2 + (count - 1 if count else 0)
            for key in item:
                total += (_utf8_len(key) if type(key) is str else len(key)) + 3
            extend(item.values())
        elif kind is list or kind is tuple:
            count = len(item)
            total += 2 + (count - 1 if count else 0)
            extend(item)
        elif kind is float:
            total += 24
        elif item is None or item is True:
            total += 4
        elif item is False:
            total += 5
        else:
            total += _estimate_other(item)
    return total


def _estimate_other(item: Any) -> int:
    """Values only MessagePack can carry (bin, timestamps) and subclasses of JSON types."""
    if isinstance(item, bytes | bytearray):
        return len(item) + 2
    if isinstance(item, bool):
        return 4 if item else 5
    if isinstance(item, str):
        return estimate_json_size(str(item))
    if isinstance(item, int):
        return 20
    if isinstance(item, float):
        return 24
    if isinstance(item, Mapping):
        return estimate_json_size(dict(item))
    if isinstance(item, list | tuple):
        return estimate_json_size(list(item))
    return len(orjson.dumps(item))  # e.g. a datetime: its ISO text, as it would be sent


# No value's estimate exceeds 20 times its compact JSON length: an integer (20) is at least one
# character, a float (24) at least three, and strings, keys, literals and punctuation are
# estimated at or below their JSON length. So JSON of up to 1/20 of the limit cannot fail.
_ESTIMATE_MAX_RATIO: Final = 20


def validate_job_data(data: Any) -> str | None:
    """The PUSH payload-size rule; returns the error text, or None when `data` fits.

    Typical payloads are cleared by one orjson call (C speed) instead of the Python walk of
    `estimate_json_size`; the walk decides only for payloads over ~512 KiB.
    """
    try:
        if len(orjson.dumps(data)) * _ESTIMATE_MAX_RATIO <= MAX_JOB_DATA_BYTES:
            return None
    except orjson.JSONEncodeError:
        pass  # MessagePack-only values (bin, bytes keys) or very deep nesting: walk instead
    size = estimate_json_size(data)
    if size > MAX_JOB_DATA_BYTES:
        return f"Job data too large (~{size} bytes, max {MAX_JOB_DATA_BYTES} bytes)"
    return None


def all_job_data_fit(datas: list[Any]) -> bool:
    """True when every payload of a batch surely passes `validate_job_data`: one orjson call
    for the whole batch instead of one per job. False means "check each one", not "too large".
    """
    try:
        return len(orjson.dumps(datas)) * _ESTIMATE_MAX_RATIO <= MAX_JOB_DATA_BYTES
    except orjson.JSONEncodeError:
        return False
