"""Cron schedule maths for CRON (PROTOCOL.md §2.9): validation texts and the next run time.

Pure functions of their arguments (no clock reads), so the engine and the coordinator can ask
"when next?" for any instant and tests can pin every boundary. Schedules are UTC.

Accepted schedules, checked in this order (the order upstream uses, so the same input gets the
same error text):

- at most 256 bytes (upstream measures bytes and calls them chars);
- exactly ``*/N`` (one field, N a positive integer): every N **seconds**, measured from the
  previous run, as upstream;
- a 5-field cron (``min hour dom mon dow``), a 6-field cron with **seconds first**, or one of
  the macros ``@yearly @annually @monthly @weekly @daily @midnight @hourly``.

Deliberate differences from upstream (PROTOCOL.md §6.6): the standard ``*/5 * * * *`` is a
5-field cron (every 5 minutes) instead of "Invalid interval format"; ``*/0`` is refused (upstream
takes it as "every tick"); a pattern that can never match (``0 0 30 2 *``) is refused at
registration instead of silently falling back to "in a minute"; croniter-only syntax that croner
does not have (7 fields with a year, ``R`` random and ``H`` hashed fields) is refused, so a
schedule means the same on every node and after every restart.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from croniter import croniter

from flashq.errors import ValidationError

__all__ = [
    "MAX_SCHEDULE_BYTES",
    "next_run_ms",
    "validate_schedule",
]

MAX_SCHEDULE_BYTES: Final = 256
"""Upstream's limit (``schedule.len()`` in Rust counts UTF-8 bytes)."""

_MISSING: Final = "Must provide either 'schedule' or 'repeat_every'"

# croniter's own field splitter: ASCII whitespace only (a no-break space is not a separator).
_FIELD_RE: Final = re.compile(r"\S+", re.ASCII)
# croniter's hashed/random field syntax (H, R, H(0-5)/2 ...): not cron, not croner.
_HASH_OR_RANDOM_RE: Final = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?", re.ASCII | re.IGNORECASE)
_MACROS: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_CRON_FIELD_COUNTS: Final = (5, 6)
# Upstream parses N as a u64 and adds N * 1000 to a u64 timestamp; keep that product in range.
_MAX_INTERVAL_S: Final = (2**64 - 1) // 1000

# Parsing costs ~170 µs against ~30 µs for a next-time query; a shard holds few distinct
# schedules, and a cap keeps a client that registers millions of them from growing memory.
_CACHE_SIZE: Final = 4096


class _InvalidScheduleError(Exception):
    """Internal: carries the exact wire error text of a refused schedule."""


def validate_schedule(schedule: str | None, repeat_every: int | None) -> str | None:
    """Check CRON's ``schedule`` / ``repeat_every`` pair.

    Args:
        schedule: the ``schedule`` field, or None when absent.
        repeat_every: the ``repeat_every`` field (ms), or None when absent.

    Returns:
        None if the pair is acceptable, else the exact upstream error text (PROTOCOL.md §4.2).
        As upstream, a given ``schedule`` is validated even when ``repeat_every`` wins.
    """
    if schedule is None:
        return _MISSING if repeat_every is None else None
    try:
        _compile(schedule)
    except _InvalidScheduleError as exc:
        return str(exc)
    return None


def next_run_ms(schedule: str | None, repeat_every: int | None, after_ms: int) -> int:
    """The next run of a cron, strictly after ``after_ms`` (Unix ms, UTC).

    ``repeat_every`` (ms) wins when given: ``after_ms + repeat_every``. ``*/N`` gives
    ``after_ms + N * 1000``. A cron pattern gives its first match strictly after ``after_ms``,
    always on a whole second.

    Raises:
        ValidationError: the pair does not pass `validate_schedule` (same text); the engine
            validates at registration, so this means a bug or a corrupt stored cron.
    """
    if repeat_every is not None:
        return after_ms + repeat_every
    if schedule is None:
        raise ValidationError(_MISSING)
    try:
        compiled = _compile(schedule)
    except _InvalidScheduleError as exc:
        raise ValidationError(str(exc)) from None
    if isinstance(compiled, int):
        return after_ms + compiled
    # Matches fall on whole seconds, so "first match after the whole second holding after_ms"
    # is the first match strictly after after_ms (upstream floors `now` the same way).
    return _next_match_s(compiled, after_ms // 1000) * 1000


def _next_match_s(pattern: croniter, after_s: int) -> int:
    """First match strictly after ``after_s`` (croniter's get_next is exclusive)."""
    return int(pattern.get_next(float, start_time=float(after_s)))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(schedule: str) -> int | croniter:
    """Parse once: an interval in ms (``*/N``) or a croniter ready for next-time queries.

    The croniter is shared through the cache; that is safe because every query passes its
    own ``start_time`` and the engine runs on one thread.
    """
    size = len(schedule.encode("utf-8", "surrogatepass"))
    if size > MAX_SCHEDULE_BYTES:
        raise _InvalidScheduleError(
            f"Cron schedule too long ({size} chars, max {MAX_SCHEDULE_BYTES} chars)"
        )
    fields = _FIELD_RE.findall(schedule)
    if len(fields) == 1 and fields[0].startswith("*/"):
        return _interval_ms(schedule, fields[0][2:])
    detail = _unsupported(fields)
    if detail is not None:
        raise _InvalidScheduleError(f"Invalid cron expression '{schedule}': {detail}")
    try:
        pattern = croniter(schedule, 0.0, ret_type=float, second_at_beginning=True)
        # A pattern that never matches (31 February) fails here, once, instead of at firing
        # time. Calendars repeat, so "matches after 1970" means "matches after any instant".
        _next_match_s(pattern, 0)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # croniter's errors are ValueError/TypeError subclasses; the others guard its parser
        # against input it did not foresee. Either way the client sent a bad schedule.
        raise _InvalidScheduleError(f"Invalid cron expression '{schedule}': {exc}") from exc
    return pattern


def _interval_ms(schedule: str, digits: str) -> int:
    """``*/N`` -> N seconds in ms; N must be a positive decimal integer."""
    if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) <= _MAX_INTERVAL_S:
        raise _InvalidScheduleError(f"Invalid interval format: {schedule}")
    return int(digits) * 1000


def _unsupported(fields: list[str]) -> str | None:
    """Why croniter would accept these fields although croner (upstream) would not, or None."""
    if len(fields) == 1 and fields[0].lower() in _MACROS:
        return None
    if len(fields) not in _CRON_FIELD_COUNTS:
        return (
            "expected 5 fields (min hour dom mon dow), 6 fields (sec min hour dom mon dow) "
            f"or a macro such as @hourly, got {len(fields)} field(s)"
        )
    for field in fields:
        if _HASH_OR_RANDOM_RE.fullmatch(field):
            return f"hashed or random field '{field}' is not supported"
    return None
