"""Property: any sequence of commits and restarts loads back as a plain dict would hold it."""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shards.storage import EmbeddedStorage, MemoryStorage, Storage

SHARDS = [0, 1, 31]
KEYS = st.sampled_from(["j:1", "j:2", "j:33", "q:default", "m:seq", "c:nightly", "ключ"])
VALUES = st.none() | st.binary(max_size=300)
BATCH = st.dictionaries(KEYS, VALUES, max_size=6)
COMMIT = st.dictionaries(st.sampled_from(SHARDS), BATCH, max_size=3)
#: An operation is a commit, or None for "restart the store".
OPERATIONS = st.lists(COMMIT | st.none(), max_size=25)


def make(kind: str, data_dir: str) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    # thresholds so small that nearly every commit rotates and compacts
    return EmbeddedStorage(
        data_dir, compact_min_bytes=64, compact_ratio=1.0, background_compaction=False
    )


@pytest.mark.parametrize("kind", ["memory", "embedded"])
@settings(max_examples=60, deadline=None)
@given(operations=OPERATIONS)
def test_reload_equals_reference(
    kind: str, operations: list[dict[int, dict[str, bytes | None]] | None]
):
    with tempfile.TemporaryDirectory() as data_dir:
        reference: dict[int, dict[str, bytes]] = {shard: {} for shard in SHARDS}
        store = make(kind, data_dir)
        try:
            for shard in SHARDS:
                store.load(shard)
            for operation in operations:
                if operation is None:
                    if kind == "embedded":
                        store.close()
                        store = make(kind, data_dir)
                        assert {shard: store.load(shard) for shard in SHARDS} == reference
                    continue
                store.commit(operation)
                for shard, batch in operation.items():
                    for key, value in batch.items():
                        if value is None:
                            reference[shard].pop(key, None)
                        else:
                            reference[shard][key] = value
            assert {shard: store.load(shard) for shard in SHARDS} == reference
        finally:
            store.close()
        if kind == "embedded":
            reopened = make(kind, data_dir)
            try:
                assert {shard: reopened.load(shard) for shard in SHARDS} == reference
            finally:
                reopened.close()
