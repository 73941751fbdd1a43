"""normalize(): command schemas, defaults, aliases and type rules (PROTOCOL.md §1.5, §2, §6)."""

from __future__ import annotations

import math
from typing import Any, get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashq.errors import ProtocolError
from flashq.protocol import command_types
from flashq.protocol.commands import (
    ALIASES,
    COMMANDS,
    FLOW_CHILD,
    JOB_INPUT,
    KV_ENTRY,
    SCHEMAS,
    normalize,
)
from flashq.protocol.schema import REQUIRED
from tests.strategies import json_objects, json_values

# The 62 commands of PROTOCOL.md §2, copied from its group table.
PROTOCOL_COMMANDS = {
    # core
    *["PUSH", "PUSHB", "PULL", "PULLB", "ACK", "ACKB", "FAIL"],
    # query
    *["GETJOB", "GETSTATE", "GETRESULT", "GETJOBBYCUSTOMID", "GETJOBSBATCH", "GETJOBS"],
    *["GETJOBCOUNTS", "COUNT", "WAITJOB"],
    # job management
    *["CANCEL", "PROGRESS", "GETPROGRESS", "UPDATEJOB", "CHANGEPRIORITY", "MOVETODELAYED"],
    *["PROMOTE", "DISCARD", "HEARTBEAT", "LOG", "GETLOGS", "PARTIAL"],
    # queue control
    *["PAUSE", "RESUME", "ISPAUSED", "DRAIN", "OBLITERATE", "CLEAN", "LISTQUEUES"],
    *["RATELIMIT", "RATELIMITCLEAR", "SETCONCURRENCY", "CLEARCONCURRENCY"],
    # DLQ, cron, flows, monitoring, pub/sub, auth
    *["DLQ", "RETRYDLQ", "PURGEDLQ", "CRON", "CRONDELETE", "CRONLIST", "FLOW", "GETCHILDREN"],
    *["STATS", "METRICS", "SUBSCRIBE", "UNSUBSCRIBE", "AUTH"],
    # key/value
    *["KVSET", "KVGET", "KVDEL", "KVMGET", "KVMSET", "KVEXISTS", "KVEXPIRE", "KVTTL"],
    *["KVKEYS", "KVINCR"],
}

# The smallest valid request of each command: its required fields.
MINIMAL: dict[str, dict[str, Any]] = {
    "PUSH": {"queue": "q", "data": None},
    "PUSHB": {"queue": "q", "jobs": []},
    "PULL": {"queue": "q"},
    "PULLB": {"queue": "q", "count": 10},
    "ACK": {"id": 1},
    "ACKB": {"ids": [1, 2]},
    "FAIL": {"id": 1},
    "GETJOB": {"id": 1},
    "GETSTATE": {"id": 1},
    "GETRESULT": {"id": 1},
    "GETJOBBYCUSTOMID": {"job_id": "c"},
    "GETJOBSBATCH": {"ids": []},
    "GETJOBS": {},
    "GETJOBCOUNTS": {"queue": "q"},
    "COUNT": {"queue": "q"},
    "WAITJOB": {"id": 1},
    "CANCEL": {"id": 1},
    "PROGRESS": {"id": 1, "progress": 50},
    "GETPROGRESS": {"id": 1},
    "UPDATEJOB": {"id": 1, "data": {"x": 1}},
    "CHANGEPRIORITY": {"id": 1, "priority": -5},
    "MOVETODELAYED": {"id": 1, "delay": 100},
    "PROMOTE": {"id": 1},
    "DISCARD": {"id": 1},
    "HEARTBEAT": {"id": 1},
    "LOG": {"id": 1, "message": "m"},
    "GETLOGS": {"id": 1},
    "PARTIAL": {"id": 1, "data": "chunk"},
    "PAUSE": {"queue": "q"},
    "RESUME": {"queue": "q"},
    "ISPAUSED": {"queue": "q"},
    "DRAIN": {"queue": "q"},
    "OBLITERATE": {"queue": "q"},
    "CLEAN": {"queue": "q", "grace": 0, "state": "failed"},
    "LISTQUEUES": {},
    "RATELIMIT": {"queue": "q", "limit": 10},
    "RATELIMITCLEAR": {"queue": "q"},
    "SETCONCURRENCY": {"queue": "q", "limit": 2},
    "CLEARCONCURRENCY": {"queue": "q"},
    "DLQ": {"queue": "q"},
    "RETRYDLQ": {"queue": "q"},
    "PURGEDLQ": {"queue": "q"},
    "CRON": {"name": "n", "queue": "q"},
    "CRONDELETE": {"name": "n"},
    "CRONLIST": {},
    "FLOW": {"queue": "q", "data": 1, "children": []},
    "GETCHILDREN": {"parent_id": 1},
    "STATS": {},
    "METRICS": {},
    "SUBSCRIBE": {"queue": "q", "events": ["completed"]},
    "UNSUBSCRIBE": {"queue": "q"},
    "AUTH": {"token": "t"},
    "KVSET": {"key": "k", "value": None},
    "KVGET": {"key": "k"},
    "KVDEL": {"key": "k"},
    "KVMGET": {"keys": ["a"]},
    "KVMSET": {"entries": []},
    "KVEXISTS": {"key": "k"},
    "KVEXPIRE": {"key": "k", "ttl": 5},
    "KVTTL": {"key": "k"},
    "KVKEYS": {},
    "KVINCR": {"key": "k"},
    "PING": {},
}

PUSH_DEFAULTS: dict[str, Any] = {
    "priority": 0,
    "delay": None,
    "ttl": 0,
    "timeout": 0,
    "max_attempts": 0,
    "backoff": 0,
    "unique_key": None,
    "depends_on": [],
    "tags": [],
    "lifo": False,
    "remove_on_complete": False,
    "remove_on_fail": False,
    "stall_timeout": 0,
    "debounce_id": None,
    "debounce_ttl": 5000,
    "job_id": None,
    "keep_completed_age": 0,
    "keep_completed_count": 0,
    "group_id": None,
}


def norm(cmd: str, **fields: Any) -> dict[str, Any]:
    return normalize({"cmd": cmd, **fields})


def fails(obj: dict[str, Any]) -> str:
    with pytest.raises(ProtocolError) as info:
        normalize(obj)
    return str(info.value)


# -- the command set ---------------------------------------------------------------------------


def test_every_protocol_command_has_a_schema() -> None:
    assert len(PROTOCOL_COMMANDS) == 62
    assert PROTOCOL_COMMANDS | {"PING"} == COMMANDS
    assert set(SCHEMAS) == set(COMMANDS)
    assert set(MINIMAL) == set(COMMANDS)
    assert dict(ALIASES) == {"UPDATE": "UPDATEJOB"}


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_minimal_request_normalizes_to_its_typed_dict_shape(cmd: str) -> None:
    # Every key of the command's TypedDict is present, and nothing else.
    out = norm(cmd, reqId="r1", unknownKey=1, **MINIMAL[cmd])
    assert out["cmd"] == cmd
    for key, value in MINIMAL[cmd].items():
        assert out[key] == value
    typed = getattr(command_types, _typed_dict_name(cmd))
    assert set(out) == set(get_type_hints(typed))
    assert get_type_hints(typed)["cmd"].__args__ == (cmd,)


@pytest.mark.parametrize(
    ("schema", "typed"),
    [
        (JOB_INPUT, command_types.JobInput),
        (FLOW_CHILD, command_types.FlowChild),
        (KV_ENTRY, command_types.KvEntry),
    ],
)
def test_nested_schemas_match_their_typed_dicts(schema: Any, typed: Any) -> None:
    assert set(schema.field_names) == set(get_type_hints(typed))


def test_command_union_lists_every_command() -> None:
    names = {get_type_hints(t)["cmd"].__args__[0] for t in command_types.Command.__args__}
    assert names == set(COMMANDS)


def _typed_dict_name(cmd: str) -> str:
    for typed in command_types.Command.__args__:
        if get_type_hints(typed)["cmd"].__args__ == (cmd,):
            return str(typed.__name__)
    raise AssertionError(f"no TypedDict for {cmd}")


# -- envelope ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "diag"),
    [
        ({}, "missing field `cmd`"),
        ({"cmd": None}, "missing field `cmd`"),
        ({"cmd": 5}, "invalid type: integer `5`, expected a string (field `cmd`)"),
        ({"cmd": ["PUSH"]}, "invalid type: a sequence, expected a string (field `cmd`)"),
        ({"cmd": "NOPE"}, "unknown command: NOPE"),
        ({"cmd": "push", "queue": "q", "data": 1}, "unknown command: push"),  # case-sensitive
        (
            {"cmd": "PING", "reqId": 7},
            "invalid type: integer `7`, expected a string (field `reqId`)",
        ),
    ],
)
def test_envelope_errors(obj: dict[str, Any], diag: str) -> None:
    assert fails(obj) == diag


def test_req_id_and_unknown_keys_are_dropped() -> None:
    out = normalize({"cmd": "PING", "reqId": "5", "_compressed": True, "options": {}})
    assert out == {"cmd": "PING"}
    assert normalize({"cmd": "PING", "reqId": None}) == {"cmd": "PING"}


# -- defaults ----------------------------------------------------------------------------------


def test_push_defaults() -> None:
    assert norm("PUSH", queue="q", data={"a": 1}) == {
        "cmd": "PUSH",
        "queue": "q",
        "data": {"a": 1},
        **PUSH_DEFAULTS,
    }


@pytest.mark.parametrize(
    ("cmd", "field", "default"),
    [
        ("PULL", "timeout", 60_000),
        ("PULLB", "timeout", 60_000),
        ("WAITJOB", "timeout", 30_000),
        ("GETJOBS", "limit", 100),
        ("GETJOBS", "offset", 0),
        ("GETJOBS", "queue", None),
        ("GETJOBS", "state", None),
        ("LOG", "level", "info"),
        ("KVINCR", "by", 1),
        ("DLQ", "count", 100),
        ("RETRYDLQ", "id", None),
        ("CRON", "data", None),
        ("CRON", "priority", 0),
        ("CRON", "schedule", None),
        ("CRON", "repeat_every", None),
        ("CRON", "limit", None),
        ("FLOW", "priority", 0),
        ("ACK", "result", None),
        ("FAIL", "error", None),
        ("PROGRESS", "message", None),
        ("PARTIAL", "index", None),
        ("CLEAN", "limit", None),
        ("KVSET", "ttl", None),
        ("KVKEYS", "pattern", None),
    ],
)
def test_defaults(cmd: str, field: str, default: Any) -> None:
    assert norm(cmd, **MINIMAL[cmd])[field] == default
    # null means absent: the default applies.
    assert norm(cmd, **{**MINIMAL[cmd], field: None})[field] == default


@pytest.mark.parametrize("field", sorted(PUSH_DEFAULTS))
def test_null_push_option_is_absent(field: str) -> None:
    # The TS SDK in binary mode sends nil for undefined options (§1.4 ★).
    assert norm("PUSH", queue="q", data=1, **{field: None})[field] == PUSH_DEFAULTS[field]


def test_list_defaults_are_fresh_per_request() -> None:
    first = norm("PUSH", queue="q", data=1)
    first["depends_on"].append(9)
    first["tags"].append("t")
    second = norm("PUSH", queue="q", data=1)
    assert second["depends_on"] == []
    assert second["tags"] == []


def test_getjobs_limit_is_capped() -> None:
    assert norm("GETJOBS", limit=5000)["limit"] == 1000
    assert norm("GETJOBS", limit=1000)["limit"] == 1000
    assert norm("GETJOBS", limit=7)["limit"] == 7


def test_required_any_field_accepts_null_but_not_absence() -> None:
    assert norm("PUSH", queue="q", data=None)["data"] is None
    assert fails({"cmd": "PUSH", "queue": "q"}) == "missing field `data`"
    assert norm("UPDATEJOB", id=1, data=None)["data"] is None
    assert fails({"cmd": "UPDATEJOB", "id": 1}) == "missing field `data`"
    assert norm("KVSET", key="k", value=None)["value"] is None
    assert fails({"cmd": "KVSET", "key": "k"}) == "missing field `value`"


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_each_required_field_is_required(cmd: str) -> None:
    required = [f.name for f in SCHEMAS[cmd].fields if f.default is REQUIRED]
    assert set(required) <= set(MINIMAL[cmd])
    for name in required:
        obj = {"cmd": cmd, **MINIMAL[cmd]}
        del obj[name]
        assert fails(obj) == f"missing field `{name}`"


# -- aliases -----------------------------------------------------------------------------------


def test_update_is_updatejob() -> None:
    assert norm("UPDATE", id=3, data=[1]) == {"cmd": "UPDATEJOB", "id": 3, "data": [1]}


def test_ping() -> None:
    assert norm("PING", reqId="x") == {"cmd": "PING"}


@pytest.mark.parametrize(
    ("alias", "canonical", "value"),
    [
        ("jobId", "job_id", "custom-1"),
        ("keepCompletedAge", "keep_completed_age", 60_000),
        ("keepCompletedCount", "keep_completed_count", 10),
        ("maxAttempts", "max_attempts", 3),
        ("removeOnComplete", "remove_on_complete", True),
        ("removeOnFail", "remove_on_fail", True),
        ("uniqueKey", "unique_key", "u"),
        ("dependsOn", "depends_on", [1, 2]),
        ("stallTimeout", "stall_timeout", 1000),
        ("debounceId", "debounce_id", "d"),
        ("debounceTtl", "debounce_ttl", 100),
        ("groupId", "group_id", "g"),
    ],
)
def test_push_camel_case_aliases(alias: str, canonical: str, value: Any) -> None:
    out = norm("PUSH", queue="q", data=1, **{alias: value})
    assert out[canonical] == value
    assert alias not in out
    # in PUSHB jobs too
    (job,) = norm("PUSHB", queue="q", jobs=[{alias: value}])["jobs"]
    assert job[canonical] == value


def test_canonical_spelling_wins_over_alias_in_either_order() -> None:
    assert norm("PUSH", queue="q", data=1, jobId="a", job_id="b")["job_id"] == "b"
    assert norm("PUSH", queue="q", data=1, job_id="b", jobId="a")["job_id"] == "b"
    # a null canonical value is "absent", so the alias applies
    assert norm("PUSH", queue="q", data=1, job_id=None, jobId="a")["job_id"] == "a"


def test_alias_is_type_checked_under_its_own_name() -> None:
    assert fails({"cmd": "PUSH", "queue": "q", "data": 1, "jobId": 5}) == (
        "invalid type: integer `5`, expected a string (field `jobId`)"
    )


def test_custom_id_alias() -> None:
    assert norm("GETJOBBYCUSTOMID", customId="c-1") == {"cmd": "GETJOBBYCUSTOMID", "job_id": "c-1"}


@pytest.mark.parametrize("cmd", ["LOG", "GETLOGS", "HEARTBEAT"])
def test_job_id_is_id_for_log_getlogs_heartbeat(cmd: str) -> None:
    fields = {k: v for k, v in MINIMAL[cmd].items() if k != "id"}
    out = norm(cmd, job_id=42, **fields)
    assert out["id"] == 42
    assert "job_id" not in out
    assert norm(cmd, job_id=42, id=7, **fields)["id"] == 7


# -- type rules --------------------------------------------------------------------------------

# (command, field, value, accepted?) — one command field per wire type.
TYPE_CASES: list[tuple[str, str, Any, bool]] = [
    # u64
    ("ACK", "id", 0, True),
    ("ACK", "id", 2**64 - 1, True),
    ("ACK", "id", 2**64, False),
    ("ACK", "id", -1, False),
    ("ACK", "id", 1.0, False),
    ("ACK", "id", "5", False),
    ("ACK", "id", True, False),
    ("ACK", "id", [1], False),
    # u32
    ("RATELIMIT", "limit", 2**32 - 1, True),
    ("RATELIMIT", "limit", 2**32, False),
    ("RATELIMIT", "limit", -1, False),
    ("RATELIMIT", "limit", False, False),
    # usize
    ("PULLB", "count", 0, True),
    ("PULLB", "count", 2**64 - 1, True),
    ("PULLB", "count", -3, False),
    ("PULLB", "count", 2.5, False),
    # i32
    ("CHANGEPRIORITY", "priority", -(2**31), True),
    ("CHANGEPRIORITY", "priority", 2**31 - 1, True),
    ("CHANGEPRIORITY", "priority", 2**31, False),
    ("CHANGEPRIORITY", "priority", -(2**31) - 1, False),
    ("CHANGEPRIORITY", "priority", "1", False),
    # i64
    ("KVINCR", "by", -(2**63), True),
    ("KVINCR", "by", 2**63 - 1, True),
    ("KVINCR", "by", 2**63, False),
    ("KVINCR", "by", 0.5, False),
    # u32 optional
    ("PARTIAL", "index", 3, True),
    ("PARTIAL", "index", -3, False),
    # str
    ("AUTH", "token", "", True),
    ("AUTH", "token", 5, False),
    ("AUTH", "token", True, False),
    ("AUTH", "token", {"a": 1}, False),
    # bool
    ("PUSH", "lifo", True, True),
    ("PUSH", "lifo", 1, False),
    ("PUSH", "lifo", "true", False),
    # any
    ("UPDATEJOB", "data", {"nested": [1, 2.5, None, "x"]}, True),
    ("UPDATEJOB", "data", "s", True),
    ("UPDATEJOB", "data", 1.5, True),
    # [u64]
    ("ACKB", "ids", [0, 2**64 - 1], True),
    ("ACKB", "ids", [1, -1], False),
    ("ACKB", "ids", [1, None], False),
    ("ACKB", "ids", [1.0], False),
    ("ACKB", "ids", 1, False),
    ("ACKB", "ids", "12", False),
    # [str]
    ("KVMGET", "keys", ["a", ""], True),
    ("KVMGET", "keys", ["a", 1], False),
    ("PUSH", "tags", ["a"], True),
    ("PUSH", "tags", [True], False),
    ("PUSH", "depends_on", [3, 4], True),
    ("PUSH", "depends_on", [3, "4"], False),
]


@pytest.mark.parametrize(("cmd", "field", "value", "ok"), TYPE_CASES)
def test_type_rules(cmd: str, field: str, value: Any, ok: bool) -> None:
    obj = {"cmd": cmd, **MINIMAL[cmd], field: value}
    if ok:
        assert normalize(obj)[field] == value
    else:
        assert f"(field `{field}`)" in fails(obj)


def test_out_of_range_and_wrong_type_diagnostics() -> None:
    assert (
        fails({"cmd": "ACK", "id": -1}) == "invalid value: integer `-1`, expected u64 (field `id`)"
    )
    assert fails({"cmd": "ACK", "id": "5"}) == 'invalid type: string "5", expected u64 (field `id`)'
    assert fails({"cmd": "ACKB", "ids": [1, "2"]}) == (
        'invalid type: string "2", expected u64 (field `ids`) at index 1'
    )


def test_tuples_are_sequences() -> None:
    # Callers inside the process (SDK, HTTP layer) may build requests with tuples.
    assert norm("ACKB", ids=(1, 2))["ids"] == [1, 2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (55, 55),
        (255, 255),  # stored as min(p, 100) by the engine
        (55.9, 55),
        (99.99, 99),
        (150.5, 100),
        (-3.2, 0),
        (100.0, 100),
    ],
)
def test_progress_accepts_fractions(value: Any, expected: int) -> None:
    out = norm("PROGRESS", id=1, progress=value)["progress"]
    assert out == expected
    assert type(out) is int


@pytest.mark.parametrize("value", [256, -1, math.nan, math.inf, True, "50", None])
def test_progress_refuses(value: Any) -> None:
    fails({"cmd": "PROGRESS", "id": 1, "progress": value})


# -- nested objects ----------------------------------------------------------------------------


def test_pushb_jobs_are_normalized_sparsely() -> None:
    # Checked like PUSH (types, aliases, null = absent) but only the fields sent are kept:
    # the engine applies the defaults itself, so a batch of 1 000 does not copy 1 000 templates.
    out = norm(
        "PUSHB",
        queue="q",
        jobs=[{"data": {"i": 1}, "priority": 5, "jobId": "c"}, {}, {"data": None, "x": 1}],
    )
    assert out["jobs"] == [{"data": {"i": 1}, "priority": 5, "job_id": "c"}, {}, {}]
    assert all("queue" not in job for job in out["jobs"])


def test_pushb_job_errors_name_the_element() -> None:
    assert fails({"cmd": "PUSHB", "queue": "q", "jobs": [{}, {"delay": -1}]}) == (
        "invalid value: integer `-1`, expected u64 (field `delay`) in `jobs[1]`"
    )
    assert fails({"cmd": "PUSHB", "queue": "q", "jobs": [{}, 3]}) == (
        "invalid type: integer `3`, expected a job object (field `jobs[1]`)"
    )
    assert "(field `jobs`)" in fails({"cmd": "PUSHB", "queue": "q", "jobs": {"data": 1}})


def test_flow_children_are_normalized() -> None:
    out = norm(
        "FLOW",
        queue="p",
        data=1,
        children=[{"queue": "c", "data": 2}, {"queue": "d", "priority": 3, "delay": 10}],
    )
    assert out["children"] == [
        {"queue": "c", "data": 2, "priority": 0, "delay": None},
        {"queue": "d", "data": None, "priority": 3, "delay": 10},
    ]
    assert "missing field `queue`" in fails(
        {"cmd": "FLOW", "queue": "p", "data": 1, "children": [{}]}
    )


def test_kvmset_entries_are_normalized() -> None:
    out = norm("KVMSET", entries=[{"key": "a", "value": 1}, {"key": "b", "value": None, "ttl": 5}])
    assert out["entries"] == [
        {"key": "a", "value": 1, "ttl": None},
        {"key": "b", "value": None, "ttl": 5},
    ]


# -- properties --------------------------------------------------------------------------------


@given(
    cmd=st.sampled_from(sorted(COMMANDS | set(ALIASES))),
    fields=json_objects,
    overrides=st.dictionaries(
        st.sampled_from(sorted({f.name for s in SCHEMAS.values() for f in s.fields})),
        json_values,
        max_size=4,
    ),
)
def test_normalize_only_ever_raises_protocol_error(
    cmd: str, fields: dict[str, Any], overrides: dict[str, Any]
) -> None:
    # Arbitrary wire objects: either a normalized command with exactly its schema's keys,
    # or a ProtocolError; never another exception.
    obj = {**fields, **overrides, "cmd": cmd}
    try:
        out = normalize(obj)
    except ProtocolError:
        return
    canonical = ALIASES.get(cmd, cmd)
    assert out["cmd"] == canonical
    assert set(out) == {"cmd", *SCHEMAS[canonical].field_names}


@given(data=json_values)
def test_push_data_is_passed_through_untouched(data: Any) -> None:
    assert norm("PUSH", queue="q", data=data)["data"] is data


def test_oversize_batches_are_not_normalized_element_by_element() -> None:
    # Such commands do nothing whatever their elements (PUSHB -> ids: [], KVMSET -> error):
    # a 16 MiB frame of `{}` must not become millions of normalized dicts.
    jobs = [{"bad": True}] * 1001
    out = norm("PUSHB", queue="q", jobs=jobs)
    assert out["jobs"] == jobs
    assert "(field `jobs[999]`)" in fails({"cmd": "PUSHB", "queue": "q", "jobs": [{}] * 999 + [1]})
    assert norm("KVMSET", entries=[1] * 1001)["entries"] == [1] * 1001
    assert "(field `entries[0]`)" in fails({"cmd": "KVMSET", "entries": [1] * 1000})
