"""Embedded backend specifics: files, locks, crashes, torn tails and corruption."""

from __future__ import annotations

import logging
import os
import random
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from flashq.errors import StorageError
from shards.storage import EmbeddedStorage
from shards.storage._records import HEADER, LOG_MAGIC

from .conftest import run_child

SHARD = 4


def shard_path(data: Path, shard: int = SHARD) -> Path:
    return data / f"shard-{shard:02d}"


def log_path(data: Path, gen: int = 1, shard: int = SHARD) -> Path:
    return shard_path(data, shard) / f"log-{gen:010d}.log"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def opened(data: Path) -> Iterator[list[EmbeddedStorage]]:
    """Every store a test opens, closed at the end whatever happened."""
    stores: list[EmbeddedStorage] = []
    yield stores
    for store in stores:
        store.close()


def open_store(opened: list[EmbeddedStorage], data: Path, **options: object) -> EmbeddedStorage:
    store = EmbeddedStorage(str(data), **options)  # type: ignore[arg-type]
    opened.append(store)
    return store


def commit_batches(store: EmbeddedStorage, count: int) -> list[dict[str, bytes]]:
    """Commit `count` batches to SHARD; return the state after each (index 0: before any)."""
    states: list[dict[str, bytes]] = [store.load(SHARD)]
    for n in range(count):
        batch: dict[str, bytes | None] = {f"j:{n}": f"job {n}".encode() * 5, f"j:{n - 2}": None}
        store.commit({SHARD: batch})
        state = dict(states[-1])
        state[f"j:{n}"] = f"job {n}".encode() * 5
        state.pop(f"j:{n - 2}", None)
        states.append(state)
    return states


def test_layout_is_one_locked_directory_per_shard(data: Path, opened: list[EmbeddedStorage]):
    store = open_store(opened, data)
    store.load(SHARD)
    store.commit({SHARD: {"a": b"1"}})

    assert sorted(os.listdir(data)) == ["shard-04"]
    assert sorted(os.listdir(shard_path(data))) == ["LOCK", "log-0000000001.log"]
    assert log_path(data).read_bytes().startswith(LOG_MAGIC)


def test_a_shard_is_locked_against_a_second_owner(data: Path, opened: list[EmbeddedStorage]):
    first = open_store(opened, data)
    first.load(SHARD)
    second = open_store(opened, data)

    with pytest.raises(StorageError, match="in use by another process"):
        second.load(SHARD)
    assert second.load(SHARD + 1) == {}  # other shards are free
    first.close()
    assert second.load(SHARD) == {}  # released by close


def test_commit_to_a_shard_not_loaded_yet_opens_it(data: Path, opened: list[EmbeddedStorage]):
    store = open_store(opened, data)
    store.commit({SHARD: {"a": b"1"}})
    store.close()

    assert open_store(opened, data).load(SHARD) == {"a": b"1"}


def test_fsync_always_commits_and_reloads(data: Path, opened: list[EmbeddedStorage]):
    store = open_store(opened, data, fsync="always")
    states = commit_batches(store, 20)
    store.close()

    assert open_store(opened, data, fsync="always").load(SHARD) == states[-1]


def test_process_exit_without_close_loses_nothing(data: Path, opened: list[EmbeddedStorage]):
    # given a child that commits and then dies without closing anything (no atexit either)
    code = textwrap.dedent(
        """
        import os, sys
        from shards.storage import EmbeddedStorage
        store = EmbeddedStorage(sys.argv[1])
        store.load(4)
        for n in range(100):
            store.commit({4: {f"j:{n}": b"x" * n, f"j:{n - 1}": None}})
        os._exit(0)
        """
    )
    assert run_child(code, str(data)).returncode == 0

    # then its last state is there, and its lock died with it
    assert open_store(opened, data).load(SHARD) == {"j:99": b"x" * 99}


@pytest.mark.parametrize("cut", [1, 7, 8, 9, 20, "all-but-header", "whole-record"])
def test_torn_tail_is_cut_at_the_last_whole_record(
    data: Path, opened: list[EmbeddedStorage], caplog: pytest.LogCaptureFixture, cut: int | str
):
    # given 10 committed batches whose last record is torn by `cut` bytes
    states = commit_batches(open_store(opened, data), 10)
    opened[0].close()
    path = log_path(data)
    size = path.stat().st_size
    last_record = len(_records(path)[-1])
    cut_bytes = {"all-but-header": last_record - HEADER.size, "whole-record": last_record}.get(
        str(cut), cut
    )
    assert isinstance(cut_bytes, int)
    os.truncate(path, size - cut_bytes)

    # when it is loaded
    with caplog.at_level(logging.WARNING):
        loaded = open_store(opened, data).load(SHARD)

    # then the torn batch is gone, the rest is there, and the file is cut cleanly
    if cut == "whole-record":  # a clean end of file: nothing is torn, nothing to say
        assert loaded == states[9]
        assert not caplog.records
    else:
        assert loaded == states[9]
        assert path.stat().st_size == size - last_record
        assert "cutting torn tail" in caplog.text
        assert str(path) in caplog.text
        assert opened[1].statistics().torn_tails_cut == 1
    # and later commits append after the cut, readable again
    opened[1].commit({SHARD: {"after": b"cut"}})
    opened[1].close()
    assert open_store(opened, data).load(SHARD) == {**states[9], "after": b"cut"}


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\xff" * 23, id="length-past-eof"),
        pytest.param(random.Random(7).randbytes(3000), id="random"),
        pytest.param(b"\x00" * 4096, id="zero-filled"),
        pytest.param(HEADER.pack(4, 12345) + b"abcd", id="bad-crc-last-record"),
        pytest.param(b"\x05\x00", id="partial-header"),
    ],
)
def test_garbage_after_the_last_record_is_cut(
    data: Path, opened: list[EmbeddedStorage], caplog: pytest.LogCaptureFixture, garbage: bytes
):
    states = commit_batches(open_store(opened, data), 5)
    opened[0].close()
    path = log_path(data)
    size = path.stat().st_size
    with path.open("ab") as file:
        file.write(garbage)

    with caplog.at_level(logging.WARNING):
        assert open_store(opened, data).load(SHARD) == states[5]

    assert path.stat().st_size == size
    assert "cutting torn tail" in caplog.text


def test_bad_checksum_on_the_very_last_record_is_a_torn_tail(
    data: Path, opened: list[EmbeddedStorage], caplog: pytest.LogCaptureFixture
):
    states = commit_batches(open_store(opened, data), 5)
    opened[0].close()
    path = log_path(data)
    _flip_byte(path, path.stat().st_size - 1)

    with caplog.at_level(logging.WARNING):
        assert open_store(opened, data).load(SHARD) == states[4]
    assert "bad checksum on the last record" in caplog.text


def test_corrupt_record_in_the_middle_stops_the_load(data: Path, opened: list[EmbeddedStorage]):
    # given 5 records, the payload of the third damaged
    commit_batches(open_store(opened, data), 5)
    opened[0].close()
    path = log_path(data)
    records = _records(path)
    third = len(LOG_MAGIC) + len(records[0]) + len(records[1])
    _flip_byte(path, third + HEADER.size + 3)

    # then loading refuses, naming the file and the record's offset, and changes nothing
    size = path.stat().st_size
    with pytest.raises(StorageError, match=re.escape(f"{path}: corrupt record at offset {third} ")):
        open_store(opened, data).load(SHARD)
    assert path.stat().st_size == size


def test_corrupt_length_in_the_middle_with_valid_data_after_is_not_silently_dropped(
    data: Path, opened: list[EmbeddedStorage]
):
    # given the second record's length made smaller: its crc no longer matches, data follows
    commit_batches(open_store(opened, data), 5)
    opened[0].close()
    path = log_path(data)
    second = len(LOG_MAGIC) + len(_records(path)[0])
    with path.open("r+b") as file:
        file.seek(second)
        file.write(HEADER.pack(10, 0)[:4])

    with pytest.raises(StorageError, match=f"offset {second}"):
        open_store(opened, data).load(SHARD)


def test_a_torn_tail_in_an_older_log_is_corruption(data: Path, opened: list[EmbeddedStorage]):
    # given a second log generation (as after a rotation) and the first log's end torn
    commit_batches(open_store(opened, data), 4)
    opened[0].close()
    log_path(data, 2).write_bytes(LOG_MAGIC)
    first = log_path(data, 1)
    os.truncate(first, first.stat().st_size - 3)
    size = first.stat().st_size

    with pytest.raises(StorageError, match="not the newest log"):
        open_store(opened, data).load(SHARD)
    assert first.stat().st_size == size  # nothing was cut


def test_a_missing_log_generation_is_corruption(data: Path, opened: list[EmbeddedStorage]):
    commit_batches(open_store(opened, data), 2)
    opened[0].close()
    log_path(data, 3).write_bytes(LOG_MAGIC)  # generation 2 is missing

    with pytest.raises(StorageError, match="a log file is missing"):
        open_store(opened, data).load(SHARD)


def test_a_file_that_is_not_a_log_is_refused(data: Path, opened: list[EmbeddedStorage]):
    shard_path(data).mkdir(parents=True)
    log_path(data).write_bytes(b"SQLite format 3\x00")

    with pytest.raises(StorageError, match="bad magic"):
        open_store(opened, data).load(SHARD)


def test_a_torn_file_header_is_rewritten(data: Path, opened: list[EmbeddedStorage]):
    shard_path(data).mkdir(parents=True)
    log_path(data).write_bytes(LOG_MAGIC[:3])  # crash while the new log's header was written

    store = open_store(opened, data)
    assert store.load(SHARD) == {}
    store.commit({SHARD: {"a": b"1"}})
    store.close()
    assert open_store(opened, data).load(SHARD) == {"a": b"1"}


def test_a_failed_write_is_undone_and_later_commits_stay_readable(
    data: Path, opened: list[EmbeddedStorage]
):
    # given a child whose file size limit makes one big commit fail part-way through its write
    code = textwrap.dedent(
        """
        import resource, signal, sys
        from flashq.errors import StorageError
        from shards.storage import EmbeddedStorage
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = EmbeddedStorage(sys.argv[1])
        store.load(4)
        store.commit({4: {"small-1": b"1"}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
        try:
            store.commit({4: {"big": b"x" * 20000}})
        except StorageError as exc:
            print("refused:", exc)
        store.commit({4: {"small-2": b"2"}})
        store.close()
        """
    )
    child = run_child(code, str(data))
    assert child.returncode == 0, child.stderr
    assert "refused:" in child.stdout

    # then the partial record was taken back: what follows it is readable
    assert open_store(opened, data).load(SHARD) == {"small-1": b"1", "small-2": b"2"}


def _records(path: Path) -> list[bytes]:
    """The raw records (header + payload) of a log file."""
    data = path.read_bytes()[len(LOG_MAGIC) :]
    records = []
    while data:
        length, _ = HEADER.unpack_from(data)
        records.append(data[: HEADER.size + length])
        data = data[HEADER.size + length :]
    return records


def _flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ 0x5A]))


def test_an_empty_newest_log_is_not_a_torn_tail(
    data: Path, opened: list[EmbeddedStorage], caplog: pytest.LogCaptureFixture
):
    # given a crash right after a rotation created the next log, before its header
    states = commit_batches(open_store(opened, data), 3)
    opened[0].close()
    log_path(data, 2).write_bytes(b"")

    with caplog.at_level(logging.WARNING):
        store = open_store(opened, data)
        assert store.load(SHARD) == states[3]
    assert not caplog.records
    store.commit({SHARD: {"later": b"1"}})
    store.close()
    assert log_path(data, 2).read_bytes().startswith(LOG_MAGIC)
    assert open_store(opened, data).load(SHARD) == {**states[3], "later": b"1"}
