"""Cron schedule maths (PROTOCOL.md §2.9): validation texts and next-run times, all in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashq.errors import ValidationError
from shards.engine.cron import MAX_SCHEDULE_BYTES, next_run_ms, validate_schedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MISSING = "Must provide either 'schedule' or 'repeat_every'"


def ms(iso: str) -> int:
    """Unix ms of a naive ISO time read as UTC (exact: no float seconds involved)."""
    return (datetime.fromisoformat(iso).replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


# (schedule, after, expected next run). `after` values sit on, just before and just after
# matches: the next run is the first match strictly after `after`.
NEXT_RUN_CASES = [
    # `*/N` alone: every N seconds from `after`, not aligned to the clock (upstream semantics).
    ("*/5", "2024-01-01T12:00:00.000", "2024-01-01T12:00:05.000"),
    ("*/1", "2024-01-01T12:00:00.123", "2024-01-01T12:00:01.123"),
    ("*/3600", "2024-01-01T12:34:56.789", "2024-01-01T13:34:56.789"),
    # 6 fields: SECONDS first. "30 * * * * *" is second 30 of every minute.
    ("30 * * * * *", "2024-01-01T12:00:00.000", "2024-01-01T12:00:30.000"),
    ("30 * * * * *", "2024-01-01T12:00:30.000", "2024-01-01T12:01:30.000"),
    ("30 * * * * *", "2024-01-01T12:00:29.999", "2024-01-01T12:00:30.000"),
    ("15 10 * * * *", "2024-01-01T12:00:00.000", "2024-01-01T12:10:15.000"),
    ("* * * * * *", "2024-01-01T12:00:00.500", "2024-01-01T12:00:01.000"),
    ("* * * * * *", "2024-01-01T12:00:00.000", "2024-01-01T12:00:01.000"),
    ("0 */5 * * * *", "2024-01-01T00:00:00.000", "2024-01-01T00:05:00.000"),
    ("0 */5 * * * *", "2024-01-01T00:04:59.999", "2024-01-01T00:05:00.000"),
    ("0 */5 * * * *", "2024-01-01T00:05:00.000", "2024-01-01T00:10:00.000"),
    ("0 */5 * * * *", "2024-01-01T00:05:00.001", "2024-01-01T00:10:00.000"),
    ("*/10 * * * * *", "2024-01-01T00:00:09.999", "2024-01-01T00:00:10.000"),
    # 5 fields: minute first. `*/5 * * * *` is every 5 minutes (upstream rejects it; we fix).
    ("*/5 * * * *", "2024-01-01T12:03:00.000", "2024-01-01T12:05:00.000"),
    ("*/5 * * * *", "2024-01-01T12:05:00.000", "2024-01-01T12:10:00.000"),
    ("* * * * *", "2024-01-01T12:00:59.999", "2024-01-01T12:01:00.000"),
    ("0 12 * * *", "2024-01-01T12:00:00.000", "2024-01-02T12:00:00.000"),
    ("0 12 * * *", "2024-01-01T11:59:59.999", "2024-01-01T12:00:00.000"),
    # 2024-01-05 is a Friday: the next weekday 09:30 is Monday the 8th.
    ("30 9 * * 1-5", "2024-01-05T10:00:00.000", "2024-01-08T09:30:00.000"),
    ("0 0 * * MON", "2024-01-05T10:00:00.000", "2024-01-08T00:00:00.000"),
    # Feb 29 comes back in the next leap year.
    ("0 0 29 2 *", "2024-03-01T00:00:00.000", "2028-02-29T00:00:00.000"),
    ("0 0 L * *", "2024-02-10T00:00:00.000", "2024-02-29T00:00:00.000"),
    # Macros.
    ("@hourly", "2024-01-01T12:00:00.000", "2024-01-01T13:00:00.000"),
    ("@HOURLY", "2024-01-01T12:59:59.999", "2024-01-01T13:00:00.000"),
    ("@daily", "2024-01-01T23:59:59.999", "2024-01-02T00:00:00.000"),
    ("@midnight", "2024-01-01T00:00:00.000", "2024-01-02T00:00:00.000"),
    ("@weekly", "2024-01-03T08:00:00.000", "2024-01-07T00:00:00.000"),  # next Sunday
    ("@monthly", "2024-01-31T12:00:00.000", "2024-02-01T00:00:00.000"),
    ("@yearly", "2024-06-01T00:00:00.000", "2025-01-01T00:00:00.000"),
    ("@annually", "2024-12-31T23:59:59.999", "2025-01-01T00:00:00.000"),
]


@pytest.mark.parametrize(("schedule", "after", "expected"), NEXT_RUN_CASES)
def test_next_run(schedule: str, after: str, expected: str) -> None:
    assert validate_schedule(schedule, None) is None
    assert next_run_ms(schedule, None, ms(after)) == ms(expected)


def test_repeat_every_wins_over_schedule() -> None:
    # Given both, the interval in ms decides; the yearly schedule is ignored.
    after = ms("2024-06-01T00:00:00.000")
    assert next_run_ms("0 0 1 1 *", 2500, after) == after + 2500
    assert next_run_ms(None, 1000, after) == after + 1000
    assert next_run_ms("*/5", 250, after) == after + 250


def test_cached_pattern_answers_earlier_queries_correctly() -> None:
    # The parsed pattern is shared; a query for a later instant must not move later answers.
    schedule = "0 0 * * *"
    assert next_run_ms(schedule, None, ms("2030-05-05T05:00:00")) == ms("2030-05-06T00:00:00")
    assert next_run_ms(schedule, None, ms("2024-01-01T05:00:00")) == ms("2024-01-02T00:00:00")


VALID = [
    "*/5",
    "*/86400",
    "*/5 * * * *",
    "0 */5 * * * *",
    "0 0 * * 7",
    "0 0 ? * MON",
    "0 0 * JAN-MAR MON-FRI",
    "0 0 * * 1#2",
    "0 0 L * *",
    "0,30 8-18/2 * * *",
    "@yearly",
    "@weekly",
    "  0 0 * * *  ",
    "0 0 * * *" + " " * (MAX_SCHEDULE_BYTES - 9),  # exactly 256 bytes
]


@pytest.mark.parametrize("schedule", VALID)
def test_valid_schedules(schedule: str) -> None:
    assert validate_schedule(schedule, None) is None
    assert validate_schedule(schedule, 1000) is None


@pytest.mark.parametrize(
    ("schedule", "repeat_every", "error"),
    [
        (None, None, MISSING),
        ("*/0", None, "Invalid interval format: */0"),
        ("*/x", None, "Invalid interval format: */x"),
        ("*/-1", None, "Invalid interval format: */-1"),
        ("*/5/2", None, "Invalid interval format: */5/2"),
        ("*/", None, "Invalid interval format: */"),
        ("*/1.5", 1000, "Invalid interval format: */1.5"),  # validated even if repeat_every wins
        ("x" * 257, None, "Cron schedule too long (257 chars, max 256 chars)"),
        ("0 0 * * *" + " " * 248, None, "Cron schedule too long (257 chars, max 256 chars)"),
        # Upstream measures bytes: 129 two-byte characters are 258 "chars".
        ("é" * 129, None, "Cron schedule too long (258 chars, max 256 chars)"),
        ("*/" + "9" * 300, 5, "Cron schedule too long (302 chars, max 256 chars)"),
    ],
)
def test_error_texts(schedule: str | None, repeat_every: int | None, error: str) -> None:
    assert validate_schedule(schedule, repeat_every) == error


def test_none_schedule_with_repeat_every_is_valid() -> None:
    assert validate_schedule(None, 1000) is None


@pytest.mark.parametrize(
    "schedule",
    [
        "",
        "foo",
        "* * *",
        "60 * * * *",
        "* 24 * * *",
        "0 0 32 * *",
        "0 0 * 13 *",
        "61 * * * * *",
        "* * * * * * *",  # croniter's 7-field year form: not croner syntax
        "0 0 1 1 * 2030",  # 6 fields are seconds-first, so 2030 is a day of week
        "0 0 30 2 *",  # never matches
        "0 0 0 31 4 *",  # never matches (30 days in April)
        "R * * * *",  # croniter random field
        "H * * * *",  # croniter hashed field
        "0 H(0-5) * * *",
        "@reboot",
        "@every 5s",
        "*/5 *",
        "0 0 * * 1#9",
    ],
)
def test_invalid_cron_expressions(schedule: str) -> None:
    error = validate_schedule(schedule, None)
    prefix = f"Invalid cron expression '{schedule}': "
    assert error is not None
    assert error.startswith(prefix)
    assert len(error) > len(prefix)  # carries a detail


def test_next_run_of_invalid_schedule_raises_the_validation_text() -> None:
    with pytest.raises(ValidationError, match=r"^Invalid interval format: \*/0$"):
        next_run_ms("*/0", None, 0)
    with pytest.raises(ValidationError, match=r"^Must provide either"):
        next_run_ms(None, None, 0)
    with pytest.raises(ValidationError, match=r"^Invalid cron expression '0 0 30 2 \*': "):
        next_run_ms("0 0 30 2 *", None, 0)


FIELD = st.sampled_from(["*", "0", "1", "5", "15", "*/2", "*/7", "1-5", "0,3", "2-4/2", "?"])
ODD_FIELD = st.sampled_from(["59", "L", "MON", "JAN", "1#2", "x", "R", "31", "*/0"])
SCHEDULES = st.one_of(
    st.lists(FIELD, min_size=5, max_size=6).map(" ".join),
    st.lists(st.one_of(FIELD, ODD_FIELD), min_size=1, max_size=7).map(" ".join),
    st.sampled_from(["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@reboot"]),
    st.text(alphabet="*/0123456789 ,-?LW#@abdhlmnortuy", max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(schedule=SCHEDULES, after=st.integers(0, ms("2100-01-01T00:00:00")))
def test_any_valid_schedule_runs_strictly_later(schedule: str, after: int) -> None:
    # Validation never raises; a valid schedule's next run is strictly after `after`. A cron
    # pattern's run is a whole second and the first match: asking again from just before it
    # gives the same instant. (`*/N` is relative to `after`, so only the first holds.)
    if validate_schedule(schedule, None) is not None:
        return
    run = next_run_ms(schedule, None, after)
    assert run > after
    if schedule.split()[0].startswith("*/") and len(schedule.split()) == 1:
        return
    assert run % 1000 == 0
    assert next_run_ms(schedule, None, run - 1) == run
