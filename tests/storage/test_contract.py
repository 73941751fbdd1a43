"""The Storage contract, checked against every backend (one suite, parametrized)."""

from __future__ import annotations

import pytest

from flashq.errors import StorageError
from shards.storage import EmbeddedStorage, MemoryStorage, open_storage

from .conftest import Backend


def test_load_of_a_never_written_shard_is_empty(backend: Backend) -> None:
    assert backend.current.load(0) == {}
    assert backend.current.load(31) == {}


def test_what_was_committed_is_what_is_loaded(backend: Backend) -> None:
    storage = backend.current
    storage.load(5)
    storage.commit({5: {"j:1": b"one", "j:2": b"two"}})
    storage.commit({5: {"m:seq": b"\x00\x01"}})

    assert storage.load(5) == {"j:1": b"one", "j:2": b"two", "m:seq": b"\x00\x01"}
    assert backend.reopen().load(5) == {"j:1": b"one", "j:2": b"two", "m:seq": b"\x00\x01"}


def test_none_deletes_and_a_later_value_overwrites(backend: Backend) -> None:
    storage = backend.current
    storage.load(1)
    storage.commit({1: {"a": b"1", "b": b"2", "c": b"3"}})
    storage.commit({1: {"a": None, "b": b"22", "missing": None}})
    # within one batch the mapping has one value per key, so there is no order to keep
    storage.commit({1: {"c": None}})
    storage.commit({1: {"c": b"back"}})

    assert storage.load(1) == {"b": b"22", "c": b"back"}
    assert backend.reopen().load(1) == {"b": b"22", "c": b"back"}


def test_shards_are_independent(backend: Backend) -> None:
    storage = backend.current
    for shard in range(32):
        storage.load(shard)
    storage.commit({shard: {"k": bytes([shard]), f"only-{shard}": b"x"} for shard in range(32)})
    storage.commit({7: {"k": None}})

    reopened = backend.reopen()
    for shard in range(32):
        expected = {f"only-{shard}": b"x"}
        if shard != 7:
            expected["k"] = bytes([shard])
        assert reopened.load(shard) == expected


def test_empty_commits_and_empty_batches_change_nothing(backend: Backend) -> None:
    storage = backend.current
    storage.load(2)
    storage.commit({2: {"a": b"1"}})
    storage.commit({})
    storage.commit({2: {}, 3: {}})

    assert storage.load(2) == {"a": b"1"}
    assert backend.reopen().load(3) == {}


def test_loaded_dict_belongs_to_the_caller(backend: Backend) -> None:
    storage = backend.current
    storage.load(0)
    storage.commit({0: {"a": b"1"}})
    loaded = storage.load(0)
    loaded["a"] = b"changed"
    loaded["b"] = b"added"

    assert storage.load(0) == {"a": b"1"}


def test_empty_and_large_values_round_trip(backend: Backend) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    storage = backend.current
    storage.load(9)
    # a queue name from a JSON escape may carry a lone surrogate into a key
    records = {"empty": b"", "big": big, "ünïcode-kéy": b"\x00", "q:\ud800": b"lone"}
    storage.commit({9: records})

    assert backend.reopen().load(9) == records


def test_shard_outside_0_to_31_is_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match=r"0\.\.31"):
        backend.current.load(32)
    with pytest.raises(ValueError, match=r"0\.\.31"):
        backend.current.commit({-1: {"a": b"1"}})


def test_closed_storage_refuses_work_and_close_is_idempotent(backend: Backend) -> None:
    storage = backend.current
    storage.load(0)
    storage.close()
    storage.close()

    with pytest.raises(StorageError, match="closed"):
        storage.commit({0: {"a": b"1"}})
    with pytest.raises(StorageError, match="closed"):
        storage.load(0)


def test_statistics_count_commits_and_records(backend: Backend) -> None:
    storage = backend.current
    storage.load(0)
    storage.load(1)
    storage.commit({0: {"a": b"1", "b": None}, 1: {"c": b"3"}})
    storage.commit({0: {"d": b"4"}})

    stats = storage.statistics()
    assert stats.backend == backend.kind
    assert stats.commits == 2
    assert stats.records_written == 4  # three in the first commit, one in the second
    assert stats.bytes_written > 0
    assert stats.avg_commit_us > 0
    assert stats.max_commit_us >= stats.last_commit_us > 0
    assert stats.shards_open == (0, 1)


def test_open_storage_builds_the_named_backend(tmp_path: object) -> None:
    memory = open_storage("memory", None, "never")
    assert isinstance(memory, MemoryStorage)
    memory.close()
    embedded = open_storage("embedded", str(tmp_path), "always")
    assert isinstance(embedded, EmbeddedStorage)
    embedded.close()


@pytest.mark.parametrize(("kind", "fsync"), [("sqlite", "never"), ("embedded", "sometimes")])
def test_open_storage_rejects_unknown_names(kind: str, fsync: str, tmp_path: object) -> None:
    with pytest.raises(ValueError, match=r"sqlite|sometimes"):
        open_storage(kind, str(tmp_path), fsync)
