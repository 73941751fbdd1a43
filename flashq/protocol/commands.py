"""The 62 commands of PROTOCOL.md §2 (plus PING): their fields, and `normalize`.

`normalize` turns one decoded request object into the normalized dict the engine executes:
canonical command name in `cmd`, every field present with its documented default, aliases
renamed, `null` treated as absent, unknown keys and `reqId` dropped. The TypedDicts in
`flashq.protocol.command_types` document each normalized shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from flashq.errors import ProtocolError
from flashq.protocol.codec import parse_error_text
from flashq.protocol.limits import (
    KV_MAX_BATCH,
    MAX_BATCH_JOBS,
    MAX_JOB_DATA_BYTES,
    MAX_QUEUE_NAME_BYTES,
    estimate_json_size,
    validate_job_data,
    validate_queue_name,
)
from flashq.protocol.schema import (
    ANY,
    BOOL,
    EMPTY_LIST,
    I32,
    I64,
    PROGRESS,
    STR,
    U32,
    U64,
    USIZE,
    Field,
    Schema,
    capped,
    describe,
    list_of,
    maps_of,
)

__all__ = [
    "ALIASES",
    "COMMANDS",
    "GETJOBS_MAX_LIMIT",
    "KV_MAX_BATCH",
    "MAX_BATCH_JOBS",
    "MAX_JOB_DATA_BYTES",
    "MAX_QUEUE_NAME_BYTES",
    "SCHEMAS",
    "estimate_json_size",
    "normalize",
    "parse_error_text",
    "validate_job_data",
    "validate_queue_name",
]

GETJOBS_MAX_LIMIT: Final = 1000
"""GETJOBS `limit` is capped here, silently, as upstream does."""

_ID: Final = Field("id", U64)
_QUEUE: Final = Field("queue", STR)
_KEY: Final = Field("key", STR)
_U64_LIST: Final = list_of(U64, "u64")
_STR_LIST: Final = list_of(STR, "string")
# The TS SDK sends `job_id` where upstream reads `id` (LOG, GETLOGS, HEARTBEAT; §6.3 ★).
_ID_OR_JOB_ID: Final = Field("id", U64, aliases=("job_id",))

# Every PUSH option, with upstream's defaults (§2.1). The camelCase aliases are what the Python
# and Go SDKs send (`jobId`, `keepCompleted*`, §6.3) and what BullMQ-style callers plausibly do.
_JOB_OPTIONS: Final = (
    Field("priority", I32, 0),
    Field("delay", U64, None),
    Field("ttl", U64, 0),
    Field("timeout", U64, 0),
    Field("max_attempts", U32, 0, aliases=("maxAttempts",)),
    Field("backoff", U64, 0),
    Field("unique_key", STR, None, aliases=("uniqueKey",)),
    Field("depends_on", _U64_LIST, EMPTY_LIST, aliases=("dependsOn",)),
    Field("tags", _STR_LIST, EMPTY_LIST),
    Field("lifo", BOOL, False),
    Field("remove_on_complete", BOOL, False, aliases=("removeOnComplete",)),
    Field("remove_on_fail", BOOL, False, aliases=("removeOnFail",)),
    Field("stall_timeout", U64, 0, aliases=("stallTimeout",)),
    Field("debounce_id", STR, None, aliases=("debounceId",)),
    Field("debounce_ttl", U64, 5000, aliases=("debounceTtl",)),
    Field("job_id", STR, None, aliases=("jobId",)),
    Field("keep_completed_age", U64, 0, aliases=("keepCompletedAge",)),
    Field("keep_completed_count", USIZE, 0, aliases=("keepCompletedCount",)),
    Field("group_id", STR, None, aliases=("groupId",)),
)

JOB_INPUT: Final = Schema(None, (Field("data", ANY, None), *_JOB_OPTIONS))
JOB_OPTION_DEFAULTS: Final[dict[str, Any]] = {
    f.name: [] if f.default is EMPTY_LIST else f.default for f in _JOB_OPTIONS
}
"""What `normalize` puts in a PUSH for each option the client did not send."""
"""A PUSHB element: every PUSH field but `queue`; `data` optional here (§2.2)."""
FLOW_CHILD: Final = Schema(
    None,
    (
        _QUEUE,
        Field("data", ANY, None),
        Field("priority", I32, 0),
        Field("delay", U64, None),
    ),
)
KV_ENTRY: Final = Schema(None, (_KEY, Field("value", ANY, None), Field("ttl", U64, None)))

_FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    # core (§2.1-2.4)
    "PUSH": (_QUEUE, Field("data", ANY), *_JOB_OPTIONS),
    "PUSHB": (
        _QUEUE,
        Field("jobs", maps_of(JOB_INPUT, "a job object", max_items=MAX_BATCH_JOBS, sparse=True)),
    ),
    "PULL": (_QUEUE, Field("timeout", U64, 60_000)),
    "PULLB": (
        _QUEUE,
        Field("count", USIZE),
        Field("timeout", U64, 60_000),
        Field("compact", BOOL, False),  # ★ jobs without their default-valued keys
    ),
    "ACK": (_ID, Field("result", ANY, None)),
    "ACKB": (Field("ids", _U64_LIST),),
    "FAIL": (_ID, Field("error", STR, None)),
    # query (§2.5)
    "GETJOB": (_ID,),
    "GETSTATE": (_ID,),
    "GETRESULT": (_ID,),
    "GETJOBBYCUSTOMID": (Field("job_id", STR, aliases=("customId",)),),
    "GETJOBSBATCH": (Field("ids", _U64_LIST),),
    "GETJOBS": (
        Field("queue", STR, None),
        Field("state", STR, None),
        Field("limit", capped(USIZE, GETJOBS_MAX_LIMIT), 100),
        Field("offset", USIZE, 0),
    ),
    "GETJOBCOUNTS": (_QUEUE,),
    "COUNT": (_QUEUE,),
    "WAITJOB": (_ID, Field("timeout", U64, 30_000)),
    # job management (§2.6)
    "CANCEL": (_ID,),
    "PROGRESS": (_ID, Field("progress", PROGRESS), Field("message", STR, None)),
    "GETPROGRESS": (_ID,),
    "UPDATEJOB": (_ID, Field("data", ANY)),
    "CHANGEPRIORITY": (_ID, Field("priority", I32)),
    "MOVETODELAYED": (_ID, Field("delay", U64)),
    "PROMOTE": (_ID,),
    "DISCARD": (_ID,),
    "HEARTBEAT": (_ID_OR_JOB_ID,),
    "LOG": (_ID_OR_JOB_ID, Field("message", STR), Field("level", STR, "info")),
    "GETLOGS": (_ID_OR_JOB_ID,),
    "PARTIAL": (_ID, Field("data", ANY), Field("index", U32, None)),
    # queue control (§2.7)
    "PAUSE": (_QUEUE,),
    "RESUME": (_QUEUE,),
    "ISPAUSED": (_QUEUE,),
    "DRAIN": (_QUEUE,),
    "OBLITERATE": (_QUEUE,),
    "CLEAN": (_QUEUE, Field("grace", U64), Field("state", STR), Field("limit", USIZE, None)),
    "LISTQUEUES": (),
    "RATELIMIT": (_QUEUE, Field("limit", U32)),
    "RATELIMITCLEAR": (_QUEUE,),
    "SETCONCURRENCY": (_QUEUE, Field("limit", U32)),
    "CLEARCONCURRENCY": (_QUEUE,),
    # dead-letter queue (§2.8)
    "DLQ": (_QUEUE, Field("count", USIZE, 100)),
    "RETRYDLQ": (_QUEUE, Field("id", U64, None)),
    "PURGEDLQ": (_QUEUE,),
    # cron (§2.9); `data` defaults to null because Py/Go omit it when None (§6.3 ★)
    "CRON": (
        Field("name", STR),
        _QUEUE,
        Field("data", ANY, None),
        Field("schedule", STR, None),
        Field("repeat_every", U64, None),
        Field("priority", I32, 0),
        Field("limit", U64, None),
    ),
    "CRONDELETE": (Field("name", STR),),
    "CRONLIST": (),
    # flows (§2.10)
    "FLOW": (
        _QUEUE,
        Field("data", ANY),
        Field("children", maps_of(FLOW_CHILD, "a flow child object")),
        Field("priority", I32, 0),
    ),
    "GETCHILDREN": (Field("parent_id", U64),),
    # monitoring (§2.11)
    "STATS": (),
    "METRICS": (),
    # pub/sub (§2.12)
    "SUBSCRIBE": (_QUEUE, Field("events", _STR_LIST)),
    "UNSUBSCRIBE": (_QUEUE,),
    # auth (§1.8)
    "AUTH": (Field("token", STR),),
    # key/value (§2.13)
    "KVSET": (_KEY, Field("value", ANY), Field("ttl", U64, None)),
    "KVGET": (_KEY,),
    "KVDEL": (_KEY,),
    "KVMGET": (Field("keys", _STR_LIST),),
    "KVMSET": (Field("entries", maps_of(KV_ENTRY, "a key/value entry", max_items=KV_MAX_BATCH)),),
    "KVEXISTS": (_KEY,),
    "KVEXPIRE": (_KEY, Field("ttl", U64)),
    "KVTTL": (_KEY,),
    "KVKEYS": (Field("pattern", STR, None),),
    "KVINCR": (_KEY, Field("by", I64, 1)),
    # ★ extension (§2.14): the server answers {"ok":true,"pong":true}
    "PING": (),
}

ALIASES: Final[Mapping[str, str]] = MappingProxyType({"UPDATE": "UPDATEJOB"})
"""Command spellings SDKs send that upstream does not know (§2.14 ★) -> canonical name."""

COMMANDS: Final = frozenset(_FIELDS)
"""Every canonical command name `normalize` accepts (the 62 of §2, plus PING)."""

SCHEMAS: Final[Mapping[str, Schema]] = MappingProxyType(
    {name: Schema(name, fields) for name, fields in _FIELDS.items()}
)
"""Canonical command name -> its compiled schema."""

_BY_WIRE_NAME: Final[dict[str, Schema]] = {
    **SCHEMAS,
    **{alias: SCHEMAS[name] for alias, name in ALIASES.items()},
}


def normalize(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one request object against its command's schema; return the normalized dict.

    The result has the canonical name in `cmd` (`UPDATE` -> `UPDATEJOB`), every field of the
    command with its default applied (optional fields without a default are None, list
    defaults are fresh lists), aliases mapped to canonical snake_case names (the canonical
    spelling wins when both are sent), fractional `progress` truncated, GETJOBS `limit`
    capped at 1000, and unknown keys and `reqId` dropped. PUSHB jobs, FLOW children and
    KVMSET entries are normalized element by element, except in a PUSHB of more than
    MAX_BATCH_JOBS jobs or a KVMSET of more than KV_MAX_BATCH entries: those do nothing
    whatever their elements, so the list is passed on as sent and only its length counts.
    Queue-name and payload-size rules are not applied here (see `validate_queue_name`,
    `validate_job_data`).

    Raises:
        ProtocolError: no/unknown/non-string `cmd`, a non-string `reqId`, a missing required
            field, or a field of the wrong type or out of range. The message is the
            diagnostic; the caller prefixes it (see `codec.parse_error_text`).
    """
    cmd = obj.get("cmd")
    schema = _BY_WIRE_NAME.get(cmd) if type(cmd) is str else None
    if schema is None:
        raise _bad_command(cmd)
    rid = obj.get("reqId")
    if rid is not None and type(rid) is not str:
        raise ProtocolError(f"invalid type: {describe(rid)}, expected a string (field `reqId`)")
    return schema.build(obj)


def _bad_command(cmd: Any) -> ProtocolError:
    if cmd is None:
        return ProtocolError("missing field `cmd`")
    if not isinstance(cmd, str):
        return ProtocolError(f"invalid type: {describe(cmd)}, expected a string (field `cmd`)")
    return ProtocolError(f"unknown command: {cmd if len(cmd) <= 64 else cmd[:64] + '...'}")
