"""The record format of the embedded backend's log and snapshot files, and how to read it.

A file is an 8-byte magic followed by records: a header (u32 payload length, u32 crc32 of
the payload, little-endian) and a msgpack payload. One record is one shard's part of one
commit, so a record is the unit of atomicity: it is either whole (length and crc check out)
or it is a torn tail left by a crash in the middle of a write.

Reading goes through large sequential reads (`READ_SIZE`) and hands out payloads as
memoryviews, so replaying a million records costs a few hundred Python-level steps per MiB.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from typing import BinaryIO, Final, final

import attrs
import msgpack

from flashq.errors import StorageError

LOG_MAGIC: Final = b"FQLOG\x00\x00\x01"
SNAP_MAGIC: Final = b"FQSNAP\x00\x01"
HEADER: Final = struct.Struct("<II")
#: Keys may hold lone surrogates (queue names from JSON escapes); store them as they are.
_KEY_ERRORS: Final = "surrogatepass"
#: Big enough that a 64 MiB log is read in a handful of syscalls, small enough not to matter
#: next to the shard's state.
READ_SIZE: Final = 8 * 1024 * 1024


def encode_record(payload: bytes) -> bytes:
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    """os.write until everything is out (a regular file may accept a short write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(path: str) -> None:
    """Make a rename, creation or deletion inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@final
@attrs.frozen
class TornTail:
    """An incomplete last record: where the whole records end and why the rest is not one."""

    offset: int
    dropped_bytes: int
    reason: str


@final
class RecordReader:
    """Iterate `(offset, payload)` over the whole records of one file.

    A damaged record followed by more data raises StorageError naming the file and offset.
    A damaged *last* record (header or payload running past end of file, bad checksum on the
    very last record, or a zero-filled rest of file as left by a crash after the file grew)
    ends the iteration and is described in `torn`; whether that is acceptable is the
    caller's decision. After iteration, `end` is the offset just past the last whole record.
    """

    def __init__(self, path: str, magic: bytes) -> None:
        self.path = path
        self.magic = magic
        self.end = 0
        self.torn: TornTail | None = None

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        with open(self.path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(len(self.magic))
            if not head:  # created, then a crash before its header: nothing was lost
                return
            if head != self.magic:
                if len(head) < len(self.magic) and self.magic.startswith(head):
                    self.torn = TornTail(0, len(head), "incomplete file header")
                    return
                raise StorageError(f"{self.path}: not a flashQ {self._kind()} file (bad magic)")
            self.end = len(self.magic)
            yield from self._records(file, size)

    def _records(self, file: BinaryIO, size: int) -> Iterator[tuple[int, memoryview]]:
        data = b""
        base = self.end  # file offset of data[0]
        pos = 0
        while True:
            offset = base + pos
            if offset == size:
                return
            if size - offset < HEADER.size:
                self._set_torn(offset, size, "incomplete record header")
                return
            if len(data) - pos < HEADER.size:
                data, base, pos = self._refill(file, data, base, pos, HEADER.size)
            length, crc = HEADER.unpack_from(data, pos)
            end = offset + HEADER.size + length
            if end > size:
                self._set_torn(offset, size, f"record of {length} bytes runs past end of file")
                return
            if len(data) - pos < HEADER.size + length:
                data, base, pos = self._refill(file, data, base, pos, HEADER.size + length)
            payload = memoryview(data)[pos + HEADER.size : pos + HEADER.size + length]
            if length == 0 or zlib.crc32(payload) != crc:
                if end == size or _rest_is_zero(file, offset, size):
                    self._set_torn(offset, size, "bad checksum on the last record")
                    return
                raise StorageError(
                    f"{self.path}: corrupt record at offset {offset} (bad checksum, "
                    f"{size - end} more bytes follow); refusing to drop data"
                )
            yield offset, payload
            pos += HEADER.size + length
            self.end = end

    def _refill(
        self, file: BinaryIO, data: bytes, base: int, pos: int, need: int
    ) -> tuple[bytes, int, int]:
        """Keep the unread part of `data` and read on until `need` bytes are available."""
        parts = [data[pos:]]
        have = len(parts[0])
        file.seek(base + len(data))
        while have < need:
            chunk = file.read(max(READ_SIZE, need - have))
            if not chunk:
                raise StorageError(f"{self.path}: file shrank while being read")
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts), base + pos, 0

    def _set_torn(self, offset: int, size: int, reason: str) -> None:
        self.torn = TornTail(offset, size - offset, reason)

    def _kind(self) -> str:
        return "log" if self.magic == LOG_MAGIC else "snapshot"


def _rest_is_zero(file: BinaryIO, offset: int, size: int) -> bool:
    """True if every byte from `offset` to end of file is zero (preallocated, never written)."""
    file.seek(offset)
    while offset < size:
        chunk = file.read(min(READ_SIZE, size - offset))
        if not chunk or chunk.count(0) != len(chunk):
            return False
        offset += len(chunk)
    return True


def apply_log(state: dict[str, bytes], path: str, *, allow_torn_tail: bool) -> RecordReader:
    """Replay one log file into `state`; returns the reader (its `end` and `torn`).

    Raises:
        StorageError: a damaged record in the middle, an undecodable payload, or a torn
            tail when `allow_torn_tail` is false (only the newest log may have one).
    """
    reader = RecordReader(path, LOG_MAGIC)
    for offset, payload in reader:
        try:
            batch = msgpack.unpackb(payload, use_list=False, unicode_errors=_KEY_ERRORS)
            for key, value in batch:
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise StorageError(f"{path}: undecodable record at offset {offset}: {exc}") from exc
    if reader.torn is not None and not allow_torn_tail:
        raise StorageError(
            f"{path}: {reader.torn.reason} at offset {reader.torn.offset}, "
            "but this is not the newest log; refusing to drop data"
        )
    return reader


def apply_snapshot(state: dict[str, bytes], path: str) -> None:
    """Load a snapshot file into `state`: chunks of [key, value] pairs, then the entry count.

    A snapshot is renamed into place only once complete and synced, so anything short of
    whole (torn, no trailer, wrong count) is damage, never a crash artefact.
    """
    reader = RecordReader(path, SNAP_MAGIC)
    count = 0
    expected: int | None = None
    for offset, payload in reader:
        try:
            chunk = msgpack.unpackb(payload, use_list=False, unicode_errors=_KEY_ERRORS)
            if expected is not None:
                raise ValueError("record after the trailer")
            if isinstance(chunk, int):
                expected = chunk
                continue
            state.update(chunk)
            count += len(chunk)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise StorageError(f"{path}: bad snapshot record at offset {offset}: {exc}") from exc
    if reader.torn is not None or expected != count:
        raise StorageError(
            f"{path}: incomplete snapshot ({count} entries read, trailer says {expected}, "
            f"torn: {reader.torn})"
        )


def encode_snapshot_chunk(pairs: list[tuple[str, bytes]]) -> bytes:
    return encode_record(msgpack.packb(pairs, unicode_errors=_KEY_ERRORS))


def encode_snapshot_trailer(count: int) -> bytes:
    return encode_record(msgpack.packb(count))


def encode_batch(batch: Mapping[str, bytes | None]) -> bytes:
    """One shard's part of one commit as one log record."""
    return encode_record(msgpack.packb(list(batch.items()), unicode_errors=_KEY_ERRORS))
