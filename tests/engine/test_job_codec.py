"""The job storage record: every field survives pack -> unpack."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shards.engine.job import ACTIVE, COMPLETED, DEPS, FAILED, PARENT, WAITING, Job
from shards.engine.job_codec import pack_job, plain_record_packer, unpack_job

FIELDS = [s for s in Job.__slots__ if s not in ("heap", "entry")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
ids = st.integers(1, 2**53)
opt_text = st.none() | st.text(max_size=8)


@given(
    data=json_values,
    result=json_values,
    state=st.sampled_from([WAITING, ACTIVE, FAILED, DEPS, PARENT, COMPLETED]),
    numbers=st.lists(st.integers(0, 2**40), min_size=16, max_size=16),
    texts=st.lists(opt_text, min_size=5, max_size=5),
    lists=st.lists(st.lists(ids, max_size=3), min_size=2, max_size=2),
    sets=st.lists(st.none() | st.sets(ids, min_size=1, max_size=3), min_size=2, max_size=2),
    flags=st.lists(st.booleans(), min_size=3, max_size=3),
    parent=st.none() | ids,
    tags=st.lists(st.text(max_size=4), max_size=3),
    watchers=st.none() | st.lists(st.integers(0, 31), min_size=1, max_size=3),
)
def test_every_field_round_trips(
    data: Any,
    result: Any,
    state: str,
    numbers: list[int],
    texts: list[str | None],
    lists: list[list[int]],
    sets: list[set[int] | None],
    flags: list[bool],
    parent: int | None,
    tags: list[str],
    watchers: list[int] | None,
) -> None:
    job = Job.from_push(32, "q", 1000, {"data": data}, parent)
    (
        job.priority, job.created_at, job.run_at, job.started_at, job.attempts, job.max_attempts,
        job.backoff, job.ttl, job.timeout, job.progress, job.last_heartbeat, job.stall_timeout,
        job.stall_count, job.children_total, job.completed_at, job.failed_at,
    ) = numbers  # fmt: skip
    job.keep_completed_age = numbers[0]
    job.keep_completed_count = numbers[1]
    job.unique_key, job.progress_msg, job.custom_id, job.group_id, _ = texts
    job.depends_on, job.children_ids = lists
    job.done_children, job.pending = sets
    job.lifo, job.remove_on_complete, job.remove_on_fail = flags
    job.tags = tags
    job.watchers = watchers
    job.state = state
    job.result = result
    again = unpack_job(32, pack_job(job))
    for name in FIELDS:
        value, expected = getattr(again, name), getattr(job, name)
        if isinstance(expected, list | tuple) and not expected:
            assert not value, name  # empty lists are stored as one shared empty tuple
        else:
            assert value == expected, name


def test_unknown_record_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        unpack_job(32, b"\x92\x63\x00")


@given(data=json_values, queue=st.text(min_size=1, max_size=8), now=st.integers(0, 2**45))
def test_plain_record_is_the_plain_job(data: Any, queue: str, now: int) -> None:
    """The short record PUSHB writes for `{"data": …}` jobs reads back as `Job.plain`."""
    head, tail = plain_record_packer(queue, now)
    record = head + msgpack.packb(data, use_bin_type=True) + tail
    again, expected = unpack_job(64, record), Job.plain(64, queue, now, data)
    assert [getattr(again, n) for n in FIELDS] == [getattr(expected, n) for n in FIELDS]
    assert pack_job(again) == pack_job(expected)
