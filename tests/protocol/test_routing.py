"""Routing helpers: which process answers a multi-id request whole."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flashq.protocol import routing


@given(
    ids=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    nprocs=st.integers(1, 8),
    cmd=st.sampled_from(["ACKB", "GETJOBSBATCH"]),
)
def test_single_process_is_found_exactly_when_every_id_lives_there(
    ids: list[int], nprocs: int, cmd: str
) -> None:
    owners = {routing.process_of_shard(routing.shard_of_id(i), nprocs) for i in ids}
    expected = owners.pop() if len(owners) == 1 else None
    assert routing.single_process_of_ids({"cmd": cmd, "ids": ids}, nprocs) == expected


def test_anything_unusual_takes_the_general_path() -> None:
    def single(obj: dict[str, Any]) -> int | None:
        return routing.single_process_of_ids(obj, 2)

    assert single({"cmd": "ACKB", "ids": [2, 4]}) == 0
    assert single({"cmd": "ACKB", "ids": []}) is None  # nothing to route by
    assert single({"cmd": "ACKB", "ids": [2, True]}) is None  # not an id: the error path
    assert single({"cmd": "ACKB", "ids": [2, -4]}) is None
    assert single({"cmd": "ACKB", "ids": [2, 2**64]}) is None
    assert single({"cmd": "ACKB", "ids": (2, 4)}) is None
    assert single({"cmd": "ACKB", "ids": "2"}) is None
    assert single({"cmd": "KVMGET", "keys": ["a"]}) is None  # keys, not ids
