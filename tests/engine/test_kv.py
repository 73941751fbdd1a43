"""The KV store (PROTOCOL.md §2.13): every command, TTLs on injected time, texts, persistence."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashq.errors import StorageError
from shards.engine.kv import COMMANDS, MAX_VALUE_BYTES, KVStore

T0 = 1_700_000_000_000  # an arbitrary "now" in Unix ms


# Normalized commands, as flashq.protocol.commands.normalize hands them over: every field
# present, defaults applied.
def unpack(record: bytes | None) -> object:
    assert record is not None
    return msgpack.unpackb(record)


def kvset(key: str, value: Any, ttl: int | None = None) -> dict[str, Any]:
    return {"cmd": "KVSET", "key": key, "value": value, "ttl": ttl}


def kvget(key: str) -> dict[str, Any]:
    return {"cmd": "KVGET", "key": key}


def kvdel(key: str) -> dict[str, Any]:
    return {"cmd": "KVDEL", "key": key}


def kvmget(keys: list[str]) -> dict[str, Any]:
    return {"cmd": "KVMGET", "keys": keys}


def kvmset(entries: list[Any]) -> dict[str, Any]:
    return {"cmd": "KVMSET", "entries": entries}


def kvexists(key: str) -> dict[str, Any]:
    return {"cmd": "KVEXISTS", "key": key}


def kvexpire(key: str, ttl: int | None) -> dict[str, Any]:
    return {"cmd": "KVEXPIRE", "key": key, "ttl": ttl}


def kvttl(key: str) -> dict[str, Any]:
    return {"cmd": "KVTTL", "key": key}


def kvkeys(pattern: str | None = None) -> dict[str, Any]:
    return {"cmd": "KVKEYS", "pattern": pattern}


def kvincr(key: str, by: int = 1) -> dict[str, Any]:
    return {"cmd": "KVINCR", "key": key, "by": by}


def err(text: str) -> dict[str, Any]:
    return {"ok": False, "error": text}


@pytest.fixture
def kv() -> KVStore:
    return KVStore()


# -- KVSET / KVGET -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [1, -7, 2.5, "text", "", True, False, None, [1, "a", None], {"a": {"b": [1]}}]
)
def test_set_then_get_returns_any_json_value(kv: KVStore, value: Any) -> None:
    assert kv.execute(kvset("k", value), T0) == {"ok": True}
    assert kv.execute(kvget("k"), T0) == {"ok": True, "value": value}


def test_get_missing_key_is_null(kv: KVStore) -> None:
    assert kv.execute(kvget("nope"), T0) == {"ok": True, "value": None}


def test_set_overwrites_value_and_ttl(kv: KVStore) -> None:
    kv.execute(kvset("k", 1, ttl=10), T0)
    kv.execute(kvset("k", 2), T0)
    assert kv.execute(kvget("k"), T0 + 1000) == {"ok": True, "value": 2}
    assert kv.execute(kvttl("k"), T0) == {"ok": True, "ttl": -1}


def test_null_value_is_a_present_key(kv: KVStore) -> None:
    kv.execute(kvset("k", None), T0)
    assert kv.execute(kvexists("k"), T0) == {"ok": True, "exists": True}


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", "Key cannot be empty"),
        ("k" * 1025, "Key too long (1025 > 1024 bytes)"),
        # Bytes, not characters: 513 two-byte characters are 1026 bytes.
        ("é" * 513, "Key too long (1026 > 1024 bytes)"),
    ],
)
def test_set_refuses_bad_keys(kv: KVStore, key: str, error: str) -> None:
    assert kv.execute(kvset(key, 1), T0) == err(error)
    assert kv.statistics() == 0


def test_key_of_exactly_1024_bytes_is_accepted(kv: KVStore) -> None:
    assert kv.execute(kvset("é" * 512, 1), T0) == {"ok": True}


def test_value_size_is_compact_json_bytes(kv: KVStore) -> None:
    # A string serializes with its two quotes: MAX - 2 characters is exactly at the limit.
    assert kv.execute(kvset("fits", "x" * (MAX_VALUE_BYTES - 2)), T0) == {"ok": True}
    too_big = "x" * (MAX_VALUE_BYTES - 1)
    assert kv.execute(kvset("big", too_big), T0) == err(
        "Value too large (10485761 > 10485760 bytes)"
    )
    assert kv.execute(kvexists("big"), T0) == {"ok": True, "exists": False}


def test_value_json_cannot_encode_is_refused(kv: KVStore) -> None:
    # msgpack clients can send bin values; JSON clients could never read them back.
    reply = kv.execute(kvset("k", b"\x00\x01"), T0)
    assert reply["ok"] is False
    assert reply["error"].startswith("Invalid: ")


# -- TTL -----------------------------------------------------------------------------------


def test_ttl_expiry_is_inclusive_of_the_deadline(kv: KVStore) -> None:
    # ttl=100 at T0 expires at T0+100: still there at that very ms (upstream: now > exp).
    kv.execute(kvset("k", "v", ttl=100), T0)
    assert kv.execute(kvget("k"), T0 + 100) == {"ok": True, "value": "v"}
    assert kv.execute(kvget("k"), T0 + 101) == {"ok": True, "value": None}


def test_zero_ttl_lives_for_the_current_ms_only(kv: KVStore) -> None:
    kv.execute(kvset("k", "v", ttl=0), T0)
    assert kv.execute(kvexists("k"), T0) == {"ok": True, "exists": True}
    assert kv.execute(kvexists("k"), T0 + 1) == {"ok": True, "exists": False}


def test_kvttl_reports_remaining_ms_no_ttl_and_missing(kv: KVStore) -> None:
    kv.execute(kvset("t", 1, ttl=5000), T0)
    kv.execute(kvset("forever", 1), T0)
    assert kv.execute(kvttl("t"), T0 + 1200) == {"ok": True, "ttl": 3800}
    assert kv.execute(kvttl("t"), T0 + 5000) == {"ok": True, "ttl": 0}
    assert kv.execute(kvttl("t"), T0 + 5001) == {"ok": True, "ttl": -2}
    assert kv.execute(kvttl("forever"), T0 + 10**9) == {"ok": True, "ttl": -1}
    assert kv.execute(kvttl("missing"), T0) == {"ok": True, "ttl": -2}


def test_expired_keys_read_as_absent_everywhere(kv: KVStore) -> None:
    kv.execute(kvset("gone", 1, ttl=10), T0)
    later = T0 + 11
    assert kv.execute(kvexists("gone"), later) == {"ok": True, "exists": False}
    assert kv.execute(kvmget(["gone"]), later) == {"ok": True, "values": [None]}
    assert kv.execute(kvkeys(), later) == {"ok": True, "keys": []}
    assert kv.execute(kvexpire("gone", 1000), later) == {"ok": True, "exists": False}
    assert kv.execute(kvdel("gone"), later) == {"ok": True, "exists": False}


def test_expired_key_is_purged_lazily_on_read(kv: KVStore) -> None:
    kv.execute(kvset("gone", 1, ttl=10), T0)
    kv.take_changes()
    assert kv.statistics() == 1
    kv.execute(kvget("gone"), T0 + 11)
    assert kv.statistics() == 0
    assert kv.take_changes() == {"k:gone": None}  # the purge reaches storage too


def test_purge_expired_drops_only_expired_keys(kv: KVStore) -> None:
    kv.execute(kvset("a", 1, ttl=10), T0)
    kv.execute(kvset("b", 1, ttl=20), T0)
    kv.execute(kvset("c", 1), T0)
    kv.take_changes()
    assert kv.purge_expired(T0 + 15) == 1
    assert kv.statistics() == 2
    assert kv.take_changes() == {"k:a": None}
    assert kv.purge_expired(T0 + 15) == 0


# -- KVDEL / KVEXISTS / KVEXPIRE -------------------------------------------------------------


def test_del_reports_whether_the_key_existed(kv: KVStore) -> None:
    kv.execute(kvset("k", 1), T0)
    assert kv.execute(kvdel("k"), T0) == {"ok": True, "exists": True}
    assert kv.execute(kvdel("k"), T0) == {"ok": True, "exists": False}
    assert kv.execute(kvget("k"), T0) == {"ok": True, "value": None}


def test_exists(kv: KVStore) -> None:
    kv.execute(kvset("k", 0), T0)
    assert kv.execute(kvexists("k"), T0) == {"ok": True, "exists": True}
    assert kv.execute(kvexists("other"), T0) == {"ok": True, "exists": False}


def test_expire_sets_a_new_deadline_from_now(kv: KVStore) -> None:
    kv.execute(kvset("k", 1), T0)
    # Set at T0 without TTL; at T0+500 a 1000 ms TTL makes it expire after T0+1500.
    assert kv.execute(kvexpire("k", 1000), T0 + 500) == {"ok": True, "exists": True}
    assert kv.execute(kvttl("k"), T0 + 500) == {"ok": True, "ttl": 1000}
    assert kv.execute(kvexists("k"), T0 + 1500) == {"ok": True, "exists": True}
    assert kv.execute(kvexists("k"), T0 + 1501) == {"ok": True, "exists": False}


def test_expire_can_extend_a_ttl(kv: KVStore) -> None:
    kv.execute(kvset("k", 1, ttl=10), T0)
    kv.execute(kvexpire("k", 10_000), T0 + 5)
    assert kv.execute(kvget("k"), T0 + 100) == {"ok": True, "value": 1}


def test_expire_missing_key_is_false(kv: KVStore) -> None:
    assert kv.execute(kvexpire("nope", 10), T0) == {"ok": True, "exists": False}
    assert kv.statistics() == 0


def test_expire_without_ttl_is_refused(kv: KVStore) -> None:
    kv.execute(kvset("k", 1), T0)
    assert kv.execute(kvexpire("k", None), T0) == err("Invalid: missing field `ttl`")


# -- KVMGET / KVMSET -----------------------------------------------------------------------


def test_mget_keeps_request_order_with_nulls_for_missing(kv: KVStore) -> None:
    kv.execute(kvset("a", 1), T0)
    kv.execute(kvset("c", 3), T0)
    assert kv.execute(kvmget(["c", "b", "a", "c"]), T0) == {
        "ok": True,
        "values": [3, None, 1, 3],
    }


def test_mget_answers_only_the_first_1000_keys(kv: KVStore) -> None:
    kv.execute(kvset("k", 1), T0)
    reply = kv.execute(kvmget(["k"] * 1500), T0)
    assert reply["values"] == [1] * 1000


def test_mset_stores_valid_entries_and_skips_invalid_ones(kv: KVStore) -> None:
    entries = [
        {"key": "a", "value": 1, "ttl": None},
        {"key": "b", "value": {"x": 1}, "ttl": 100},
        {"key": "", "value": 1, "ttl": None},  # empty key
        {"key": "k" * 1025, "value": 1, "ttl": None},  # key too long
        {"key": "big", "value": "x" * MAX_VALUE_BYTES, "ttl": None},  # value too large
        {"key": "neg", "value": 1, "ttl": -5},  # ttl out of range
        {"key": 7, "value": 1, "ttl": None},  # not a string key
        "not an entry",
        {"key": "c", "value": None},  # ttl omitted, null value
    ]
    assert kv.execute(kvmset(entries), T0) == {"ok": True, "count": 3}
    assert kv.execute(kvmget(["a", "b", "c", "big", "neg"]), T0)["values"] == [
        1,
        {"x": 1},
        None,
        None,
        None,
    ]
    assert kv.execute(kvexists("c"), T0) == {"ok": True, "exists": True}
    assert kv.execute(kvttl("b"), T0 + 40) == {"ok": True, "ttl": 60}
    assert kv.statistics() == 3


def test_mset_limit(kv: KVStore) -> None:
    entries = [{"key": f"k{i}", "value": i, "ttl": None} for i in range(1001)]
    assert kv.execute(kvmset(entries), T0) == err("Too many entries (1001 > 1000)")
    assert kv.statistics() == 0  # all or nothing
    assert kv.execute(kvmset(entries[:1000]), T0) == {"ok": True, "count": 1000}


# -- KVKEYS --------------------------------------------------------------------------------

GLOB_KEYS = ["user:1", "user:12", "user:1:profile", "session:abc", "a.b", "axb", "a+b", "[x]", "é?"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, GLOB_KEYS),
        ("*", GLOB_KEYS),
        ("user:*", ["user:1", "user:12", "user:1:profile"]),
        ("user:?", ["user:1"]),
        ("user:??", ["user:12"]),
        ("user:*:profile", ["user:1:profile"]),
        ("*:*", ["user:1", "user:12", "user:1:profile", "session:abc"]),
        ("*1", ["user:1"]),
        ("*b*", ["session:abc", "a.b", "axb", "a+b"]),
        # Everything but * and ? is literal, regex specials included.
        ("a.b", ["a.b"]),
        ("a+b", ["a+b"]),
        ("[x]", ["[x]"]),
        ("a?b", ["a.b", "axb", "a+b"]),
        ("??", ["é?"]),  # ? is one character, not one byte
        ("é?", ["é?"]),
        ("user:", []),
        ("", []),
        ("**user:1**", ["user:1", "user:12", "user:1:profile"]),
    ],
)
def test_keys_glob(kv: KVStore, pattern: str | None, expected: list[str]) -> None:
    for key in GLOB_KEYS:
        kv.execute(kvset(key, 1), T0)
    assert sorted(kv.execute(kvkeys(pattern), T0)["keys"]) == sorted(expected)


def test_keys_glob_matches_newlines(kv: KVStore) -> None:
    kv.execute(kvset("line1\nline2", 1), T0)
    assert kv.execute(kvkeys("line1?line2"), T0)["keys"] == ["line1\nline2"]
    assert kv.execute(kvkeys("*2"), T0)["keys"] == ["line1\nline2"]


def test_keys_pathological_pattern_is_fast(kv: KVStore) -> None:
    # A naive backtracking matcher takes exponential time here.
    kv.execute(kvset("a" * 1024, 1), T0)
    start = time.perf_counter()
    assert kv.execute(kvkeys("*a" * 30 + "*b"), T0)["keys"] == []
    assert time.perf_counter() - start < 1.0


def glob_reference(pattern: str, text: str) -> bool:
    """Textbook dynamic programme: can pattern[:i] match text[:j]."""
    n = len(text)
    row = [True] + [False] * n
    for p in pattern:
        if p == "*":
            new = [row[0]] + [False] * n
            for j in range(1, n + 1):
                new[j] = row[j] or new[j - 1]
        else:
            new = [False] * (n + 1)
            for j in range(1, n + 1):
                new[j] = row[j - 1] and (p in ("?", text[j - 1]))
        row = new
    return row[n]


@settings(max_examples=400, deadline=None)
@given(pattern=st.text(alphabet="ab*?.", max_size=8), key=st.text(alphabet="ab.", max_size=8))
def test_keys_glob_agrees_with_reference(pattern: str, key: str) -> None:
    kv = KVStore()
    if key:
        kv.execute(kvset(key, 1), T0)
    assert kv.execute(kvkeys(pattern), T0)["keys"] == (
        [key] if key and glob_reference(pattern, key) else []
    )


# -- KVINCR --------------------------------------------------------------------------------


def test_incr_creates_missing_key_with_by(kv: KVStore) -> None:
    assert kv.execute(kvincr("n"), T0) == {"ok": True, "value": 1}
    assert kv.execute(kvincr("m", 5), T0) == {"ok": True, "value": 5}
    assert kv.execute(kvttl("m"), T0) == {"ok": True, "ttl": -1}


def test_incr_adds_and_decrements(kv: KVStore) -> None:
    kv.execute(kvset("n", 10), T0)
    assert kv.execute(kvincr("n", 5), T0) == {"ok": True, "value": 15}
    assert kv.execute(kvincr("n", -20), T0) == {"ok": True, "value": -5}
    assert kv.execute(kvget("n"), T0) == {"ok": True, "value": -5}


def test_incr_counts_null_as_zero(kv: KVStore) -> None:
    kv.execute(kvset("n", None), T0)
    assert kv.execute(kvincr("n", 3), T0) == {"ok": True, "value": 3}


def test_incr_keeps_the_ttl_of_an_existing_key(kv: KVStore) -> None:
    kv.execute(kvset("n", 1, ttl=1000), T0)
    assert kv.execute(kvincr("n"), T0 + 400) == {"ok": True, "value": 2}
    assert kv.execute(kvttl("n"), T0 + 400) == {"ok": True, "ttl": 600}
    assert kv.execute(kvexists("n"), T0 + 1001) == {"ok": True, "exists": False}


def test_incr_of_expired_key_starts_over_without_ttl(kv: KVStore) -> None:
    kv.execute(kvset("n", 41, ttl=10), T0)
    assert kv.execute(kvincr("n", 2), T0 + 11) == {"ok": True, "value": 2}
    assert kv.execute(kvttl("n"), T0 + 11) == {"ok": True, "ttl": -1}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, "Value is not an integer"),
        (5.0, "Value is not an integer"),  # a JSON float, even if whole
        (2**63, "Value is not an integer"),  # past i64, as serde's as_i64
        ("5", "Value is not a number"),
        (True, "Value is not a number"),
        ([1], "Value is not a number"),
        ({"n": 1}, "Value is not a number"),
    ],
)
def test_incr_refuses_non_integers(kv: KVStore, value: Any, error: str) -> None:
    kv.execute(kvset("n", value), T0)
    assert kv.execute(kvincr("n"), T0) == err(error)
    assert kv.execute(kvget("n"), T0) == {"ok": True, "value": value}  # unchanged


def test_incr_refuses_to_overflow_i64(kv: KVStore) -> None:
    kv.execute(kvset("n", 2**63 - 1), T0)
    reply = kv.execute(kvincr("n"), T0)
    assert reply["ok"] is False
    assert kv.execute(kvget("n"), T0) == {"ok": True, "value": 2**63 - 1}


# -- dispatch and replies ------------------------------------------------------------------


def test_commands_lists_every_kv_command() -> None:
    assert {
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
    } == COMMANDS


def test_unknown_command_is_a_programming_error(kv: KVStore) -> None:
    with pytest.raises(ValueError, match="PUSH"):
        kv.execute({"cmd": "PUSH"}, T0)


def test_replies_are_fresh_dicts(kv: KVStore) -> None:
    # The process adds reqId to replies; that must not leak into the next one.
    first = kv.execute(kvset("k", 1), T0)
    first["reqId"] = "1"
    assert kv.execute(kvset("k", 2), T0) == {"ok": True}


# -- persistence ---------------------------------------------------------------------------


def test_take_changes_reports_records_and_deletions(kv: KVStore) -> None:
    kv.execute(kvset("a", {"x": [1, 2]}, ttl=500), T0)
    kv.execute(kvset("b", "v"), T0)
    kv.execute(kvset("gone", 1), T0)
    kv.execute(kvdel("gone"), T0)
    changes = kv.take_changes()
    assert changes.keys() == {"k:a", "k:b", "k:gone"}
    assert unpack(changes["k:a"]) == [{"x": [1, 2]}, T0 + 500]
    assert unpack(changes["k:b"]) == ["v", None]
    assert changes["k:gone"] is None
    assert kv.take_changes() == {}  # drained


def test_take_changes_reports_only_the_latest_state(kv: KVStore) -> None:
    for i in range(5):
        kv.execute(kvincr("n"), T0 + i)
    changes = kv.take_changes()
    assert changes.keys() == {"k:n"}
    assert unpack(changes["k:n"]) == [5, None]


def test_reads_change_nothing(kv: KVStore) -> None:
    kv.execute(kvset("a", 1, ttl=100), T0)
    kv.take_changes()
    for cmd in [kvget("a"), kvmget(["a", "b"]), kvexists("a"), kvttl("a"), kvkeys("*")]:
        kv.execute(cmd, T0 + 50)
    assert kv.take_changes() == {}


def test_failed_writes_change_nothing(kv: KVStore) -> None:
    kv.execute(kvset("s", "text"), T0)
    kv.take_changes()
    kv.execute(kvset("", 1), T0)
    kv.execute(kvincr("s"), T0)
    kv.execute(kvexpire("missing", 5), T0)
    kv.execute(kvdel("missing"), T0)
    assert kv.take_changes() == {}


def test_expire_is_persisted(kv: KVStore) -> None:
    kv.execute(kvset("a", 1), T0)
    kv.take_changes()
    kv.execute(kvexpire("a", 250), T0 + 10)
    assert unpack(kv.take_changes()["k:a"]) == [1, T0 + 260]


def test_round_trip_through_storage_records(kv: KVStore) -> None:
    kv.execute(kvset("plain", {"deep": [1, None, "x"]}), T0)
    kv.execute(kvset("ttl", "soon", ttl=1000), T0)
    kv.execute(kvincr("counter", 42), T0)
    records: dict[str, bytes] = {
        key: value for key, value in kv.take_changes().items() if value is not None
    }
    # Other engine records share the storage; the KV store takes only its own.
    records["j:96"] = b"\xc1 not msgpack"
    restored = KVStore()
    restored.load(records)
    assert restored.statistics() == 3
    assert restored.take_changes() == {}  # loading writes nothing back
    assert restored.execute(kvget("plain"), T0) == {"ok": True, "value": {"deep": [1, None, "x"]}}
    assert restored.execute(kvttl("ttl"), T0 + 400) == {"ok": True, "ttl": 600}
    assert restored.execute(kvincr("counter"), T0) == {"ok": True, "value": 43}
    assert restored.execute(kvexists("ttl"), T0 + 1001) == {"ok": True, "exists": False}


def test_loaded_expired_keys_read_as_absent_and_are_purged(kv: KVStore) -> None:
    kv.load({"k:old": msgpack.packb([1, T0 - 1]), "k:new": msgpack.packb([2, None])})
    assert kv.execute(kvkeys(), T0) == {"ok": True, "keys": ["new"]}
    assert kv.take_changes() == {"k:old": None}


@pytest.mark.parametrize(
    "raw",
    [b"\xc1", msgpack.packb([1]), msgpack.packb("x"), msgpack.packb([1, "soon"]), b"\x92\x01"],
)
def test_load_refuses_corrupt_records(kv: KVStore, raw: bytes) -> None:
    with pytest.raises(StorageError, match="k:bad"):
        kv.load({"k:bad": raw})


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "incr", "expire", "mset", "purge"]),
        st.sampled_from(["a", "b", "c"]),
        st.one_of(st.none(), st.integers(0, 50)),
        st.integers(0, 20),  # ms advanced before the op
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(ops=OPS)
def test_storage_mirrors_memory_after_any_history(
    ops: list[tuple[str, str, int | None, int]],
) -> None:
    # Apply random writes, feeding every batch of changes into a dict standing in for storage;
    # a store loaded from that dict then answers every read like the original.
    kv, storage, now = KVStore(), dict[str, bytes](), T0
    for op, key, ttl, step in ops:
        now += step
        if op == "set":
            kv.execute(kvset(key, [key, now], ttl), now)
        elif op == "del":
            kv.execute(kvdel(key), now)
        elif op == "incr":
            kv.execute(kvincr(key, 2), now)
        elif op == "expire":
            kv.execute(kvexpire(key, ttl or 0), now)
        elif op == "mset":
            kv.execute(kvmset([{"key": key, "value": now, "ttl": ttl}]), now)
        else:
            kv.purge_expired(now)
        for skey, value in kv.take_changes().items():
            if value is None:
                storage.pop(skey, None)
            else:
                storage[skey] = value
    restored = KVStore()
    restored.load(storage)
    for at in (now, now + 25, now + 100):
        for key in "abc":
            for read in (kvget(key), kvttl(key)):
                assert restored.execute(read, at) == kv.execute(read, at)
        assert sorted(restored.execute(kvkeys(), at)["keys"]) == sorted(
            kv.execute(kvkeys(), at)["keys"]
        )
