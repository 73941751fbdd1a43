"""The key/value store of one logical shard (PROTOCOL.md §2.13): KVSET ... KVINCR.

Pure and synchronous: time is a parameter, nothing here reads a clock or does I/O. Expired keys
read as absent everywhere and are dropped lazily when touched, or in bulk by `purge_expired`.

Unlike upstream (memory only) the store is persisted: every change marks its key dirty and
`take_changes` hands the process one storage record per dirty key (``k:<key>`` -> msgpack of
``[value, expires_at_ms | None]``, or None for a deletion), so KV data survives restarts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import msgpack
import orjson

from flashq.errors import StorageError

__all__ = [
    "COMMANDS",
    "KEY_PREFIX",
    "MAX_BATCH",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "KVStore",
]

MAX_KEY_BYTES: Final = 1024
MAX_VALUE_BYTES: Final = 10_485_760
"""Compact JSON size of a value; upstream's limit, sized for ML payloads."""
MAX_BATCH: Final = 1000
"""KVMSET refuses more entries; KVMGET answers only this many keys (upstream)."""
KEY_PREFIX: Final = "k:"
"""Storage keys of KV records; the engine's other records use other prefixes."""
COMMANDS: Final = frozenset(
    {
        "KVSET",
        "KVGET",
        "KVDEL",
        "KVMGET",
        "KVMSET",
        "KVEXISTS",
        "KVEXPIRE",
        "KVTTL",
        "KVKEYS",
        "KVINCR",
    }
)
"""The commands `KVStore.execute` answers, for the engine's dispatch."""

_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1

Reply = dict[str, Any]


def _ok() -> Reply:
    return {"ok": True}  # a fresh dict: the caller may add reqId to it


def _err(text: str) -> Reply:
    return {"ok": False, "error": text}


@attrs.define(slots=True)
class _Entry:
    value: Any
    expires_at: int | None  # Unix ms; live while now_ms <= expires_at (upstream: now > exp)

    def expired(self, now_ms: int) -> bool:
        return self.expires_at is not None and now_ms > self.expires_at


class KVStore:
    """Keys and JSON values with optional TTLs, for the KV commands of one shard.

    `execute` takes a normalized command (flashq.protocol.commands.normalize: canonical
    ``cmd``, every field present) and returns the reply body without ``reqId``.
    """

    def __init__(self) -> None:
        self._data: dict[str, _Entry] = {}
        self._dirty: set[str] = set()
        self._handlers: dict[str, Callable[[Mapping[str, Any], int], Reply]] = {
            "KVSET": self._kvset,
            "KVGET": self._kvget,
            "KVDEL": self._kvdel,
            "KVMGET": self._kvmget,
            "KVMSET": self._kvmset,
            "KVEXISTS": self._kvexists,
            "KVEXPIRE": self._kvexpire,
            "KVTTL": self._kvttl,
            "KVKEYS": self._kvkeys,
            "KVINCR": self._kvincr,
        }

    # -- public API -----------------------------------------------------------------------

    def execute(self, cmd: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        """Run one KV command at ``now_ms`` and return its reply body.

        Raises:
            ValueError: ``cmd["cmd"]`` is not a KV command (a routing bug, not client input).
        """
        name = cmd["cmd"]
        handler = self._handlers.get(name)
        if handler is None:
            raise ValueError(f"not a KV command: {name!r}")
        return handler(cmd, now_ms)

    def purge_expired(self, now_ms: int) -> int:
        """Drop every key expired at ``now_ms``; return how many were dropped."""
        dead = [key for key, entry in self._data.items() if entry.expired(now_ms)]
        for key in dead:
            self._delete(key)
        return len(dead)

    @property
    def changed(self) -> bool:
        """Whether `take_changes` has something to report."""
        return bool(self._dirty)

    def take_changes(self) -> dict[str, bytes | None]:
        """Storage records changed since the last call: ``k:<key>`` -> bytes, or None = delete.

        Only the latest state of each key is reported, however often it changed in between.
        """
        changes: dict[str, bytes | None] = {}
        for key in self._dirty:
            entry = self._data.get(key)
            changes[KEY_PREFIX + key] = (
                None if entry is None else msgpack.packb([entry.value, entry.expires_at])
            )
        self._dirty.clear()
        return changes

    def load(self, records: Mapping[str, bytes]) -> None:
        """Restore keys from storage records; records without the ``k:`` prefix are ignored.

        Entries already expired are kept and read as absent (no clock here); the next touch or
        `purge_expired` deletes them from storage too. Loading marks nothing dirty.

        Raises:
            StorageError: a ``k:`` record is not ``[value, expires_at_ms | None]`` msgpack.
        """
        for storage_key, raw in records.items():
            if not storage_key.startswith(KEY_PREFIX):
                continue
            try:
                value, expires_at = msgpack.unpackb(raw)
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise StorageError(f"corrupt KV record {storage_key!r}: {exc}") from exc
            if expires_at is not None and not _is_int(expires_at):
                raise StorageError(f"corrupt KV record {storage_key!r}: bad expiry {expires_at!r}")
            self._data[storage_key[len(KEY_PREFIX) :]] = _Entry(value, expires_at)

    def statistics(self) -> int:
        """Number of keys held (expired keys not yet purged included)."""
        return len(self._data)

    # -- helpers --------------------------------------------------------------------------

    def _live(self, key: str, now_ms: int) -> _Entry | None:
        """The entry of a live key; an expired one is deleted on the way and reads as None."""
        entry = self._data.get(key)
        if entry is not None and entry.expired(now_ms):
            self._delete(key)
            return None
        return entry

    def _delete(self, key: str) -> bool:
        if self._data.pop(key, None) is None:
            return False
        self._dirty.add(key)
        return True

    def _store(self, key: str, value: Any, expires_at: int | None) -> None:
        self._data[key] = _Entry(value, expires_at)
        self._dirty.add(key)

    # -- commands -------------------------------------------------------------------------

    def _kvset(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        key: str = cmd["key"]
        value = cmd["value"]
        error = _check_entry(key, value)
        if error is not None:
            return _err(error)
        ttl: int | None = cmd["ttl"]
        self._store(key, value, None if ttl is None else now_ms + ttl)
        return _ok()

    def _kvget(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        entry = self._live(cmd["key"], now_ms)
        return {"ok": True, "value": None if entry is None else entry.value}

    def _kvdel(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        # An expired key "did not exist" (it read as absent); it is still removed.
        existed = self._live(cmd["key"], now_ms) is not None
        self._delete(cmd["key"])
        return {"ok": True, "exists": existed}

    def _kvmget(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        values = []
        for key in cmd["keys"][:MAX_BATCH]:
            entry = self._live(key, now_ms)
            values.append(None if entry is None else entry.value)
        return {"ok": True, "values": values}

    def _kvmset(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        entries = cmd["entries"]
        if len(entries) > MAX_BATCH:
            return _err(f"Too many entries ({len(entries)} > {MAX_BATCH})")
        count = 0
        for item in entries:
            if not isinstance(item, Mapping):
                continue
            key, value, ttl = item.get("key"), item.get("value"), item.get("ttl")
            if not isinstance(key, str) or _check_entry(key, value) is not None:
                continue
            if ttl is not None and not (_is_int(ttl) and ttl >= 0):
                continue
            self._store(key, value, None if ttl is None else now_ms + ttl)
            count += 1
        return {"ok": True, "count": count}

    def _kvexists(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        return {"ok": True, "exists": self._live(cmd["key"], now_ms) is not None}

    def _kvexpire(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        ttl: int | None = cmd["ttl"]
        if ttl is None:  # required on the wire; upstream fails to parse the command
            return _err("Invalid: missing field `ttl`")
        entry = self._live(cmd["key"], now_ms)
        if entry is None:
            return {"ok": True, "exists": False}
        entry.expires_at = now_ms + ttl
        self._dirty.add(cmd["key"])
        return {"ok": True, "exists": True}

    def _kvttl(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        entry = self._live(cmd["key"], now_ms)
        if entry is None:
            ttl = -2
        elif entry.expires_at is None:
            ttl = -1
        else:
            ttl = entry.expires_at - now_ms
        return {"ok": True, "ttl": ttl}

    def _kvkeys(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        pattern: str | None = cmd["pattern"]
        matches = None if pattern is None else _compile_glob(pattern)
        keys: list[str] = []
        dead: list[str] = []
        for key, entry in self._data.items():
            if entry.expired(now_ms):
                dead.append(key)
            elif matches is None or matches(key):
                keys.append(key)
        for key in dead:
            self._delete(key)
        return {"ok": True, "keys": keys}

    def _kvincr(self, cmd: Mapping[str, Any], now_ms: int) -> Reply:
        key: str = cmd["key"]
        by: int = cmd["by"]
        entry = self._live(key, now_ms)
        if entry is None:
            current, expires_at = 0, None  # created with `by`, without a TTL
        else:
            current, expires_at = entry.value, entry.expires_at
            if current is None:
                current = 0
            elif isinstance(current, bool) or not isinstance(current, int | float):
                return _err("Value is not a number")
            elif isinstance(current, float) or not _I64_MIN <= current <= _I64_MAX:
                # serde_json's as_i64 fails for floats and for integers past i64.
                return _err("Value is not an integer")
        result = current + by
        if not _I64_MIN <= result <= _I64_MAX:
            return _err("Value is not an integer (increment would overflow i64)")
        self._store(key, result, expires_at)
        return {"ok": True, "value": result}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(key: str, value: Any) -> str | None:
    """The error text for a key/value pair KVSET must refuse, or None."""
    if not key:
        return "Key cannot be empty"
    key_bytes = len(key.encode("utf-8", "surrogatepass"))
    if key_bytes > MAX_KEY_BYTES:
        return f"Key too long ({key_bytes} > {MAX_KEY_BYTES} bytes)"
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:
        # Only reachable from msgpack clients (bin values, integer map keys ...): refuse
        # rather than store something a JSON client could never read back.
        return f"Invalid: value is not representable as JSON ({exc})"
    if size > MAX_VALUE_BYTES:
        return f"Value too large ({size} > {MAX_VALUE_BYTES} bytes)"
    return None


@functools.lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for KVKEYS globs: ``*`` any run, ``?`` one character, the rest literal.

    Built from star-free segments matched leftmost in order, which is exact for globs and
    linear per segment, so no pattern can make the regex engine backtrack exponentially
    (``*a*a*a*a*b`` against a long key of ``a``s).
    """
    parts = pattern.split("*")
    segments = [re.compile(_segment_regex(part), re.DOTALL) for part in parts]
    if len(segments) == 1:
        whole = segments[0]
        return lambda text: whole.fullmatch(text) is not None
    first, *middle, last = segments
    last_len = len(parts[-1])  # each pattern char, `?` included, matches exactly one char

    def matches(text: str) -> bool:
        found = first.match(text)
        if found is None:
            return False
        pos = found.end()
        for segment in middle:
            found = segment.search(text, pos)
            if found is None:
                return False
            pos = found.end()
        start = len(text) - last_len
        return start >= pos and last.fullmatch(text, start) is not None

    return matches


def _segment_regex(part: str) -> str:
    return ".".join(re.escape(literal) for literal in part.split("?"))
