"""TypedDicts of the normalized commands `commands.normalize` returns, for mypy.

One per command; `cmd` is a Literal so `if c["cmd"] == "PUSH"` narrows a `Command`. Every key
is always present (defaults applied); `X | None` marks optional fields without a default.
A test keeps these in step with the schema table in `commands.py`.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class JobInput(TypedDict):
    """A PUSH's options; also one element of PUSHB `jobs`."""

    data: Any
    priority: int
    delay: int | None
    ttl: int
    timeout: int
    max_attempts: int
    backoff: int
    unique_key: str | None
    depends_on: list[int]
    tags: list[str]
    lifo: bool
    remove_on_complete: bool
    remove_on_fail: bool
    stall_timeout: int
    debounce_id: str | None
    debounce_ttl: int
    job_id: str | None
    keep_completed_age: int
    keep_completed_count: int
    group_id: str | None


class FlowChild(TypedDict):
    queue: str
    data: Any
    priority: int
    delay: int | None


class KvEntry(TypedDict):
    key: str
    value: Any
    ttl: int | None


# -- core ------------------------------------------------------------------------------------


class PushCmd(JobInput):
    cmd: Literal["PUSH"]
    queue: str


class PushBatchCmd(TypedDict):
    cmd: Literal["PUSHB"]
    queue: str
    jobs: list[JobInput]  # as sent, not normalized, when longer than MAX_BATCH_JOBS


class PullCmd(TypedDict):
    cmd: Literal["PULL"]
    queue: str
    timeout: int


class PullBatchCmd(TypedDict):
    cmd: Literal["PULLB"]
    queue: str
    count: int
    timeout: int
    compact: bool


class AckCmd(TypedDict):
    cmd: Literal["ACK"]
    id: int
    result: Any


class AckBatchCmd(TypedDict):
    cmd: Literal["ACKB"]
    ids: list[int]


class FailCmd(TypedDict):
    cmd: Literal["FAIL"]
    id: int
    error: str | None


# -- query -----------------------------------------------------------------------------------


class GetJobCmd(TypedDict):
    cmd: Literal["GETJOB"]
    id: int


class GetStateCmd(TypedDict):
    cmd: Literal["GETSTATE"]
    id: int


class GetResultCmd(TypedDict):
    cmd: Literal["GETRESULT"]
    id: int


class GetJobByCustomIdCmd(TypedDict):
    cmd: Literal["GETJOBBYCUSTOMID"]
    job_id: str


class GetJobsBatchCmd(TypedDict):
    cmd: Literal["GETJOBSBATCH"]
    ids: list[int]


class GetJobsCmd(TypedDict):
    cmd: Literal["GETJOBS"]
    queue: str | None
    state: str | None
    limit: int
    offset: int


class GetJobCountsCmd(TypedDict):
    cmd: Literal["GETJOBCOUNTS"]
    queue: str


class CountCmd(TypedDict):
    cmd: Literal["COUNT"]
    queue: str


class WaitJobCmd(TypedDict):
    cmd: Literal["WAITJOB"]
    id: int
    timeout: int


# -- job management --------------------------------------------------------------------------


class CancelCmd(TypedDict):
    cmd: Literal["CANCEL"]
    id: int


class ProgressCmd(TypedDict):
    cmd: Literal["PROGRESS"]
    id: int
    progress: int
    message: str | None


class GetProgressCmd(TypedDict):
    cmd: Literal["GETPROGRESS"]
    id: int


class UpdateJobCmd(TypedDict):
    cmd: Literal["UPDATEJOB"]
    id: int
    data: Any


class ChangePriorityCmd(TypedDict):
    cmd: Literal["CHANGEPRIORITY"]
    id: int
    priority: int


class MoveToDelayedCmd(TypedDict):
    cmd: Literal["MOVETODELAYED"]
    id: int
    delay: int


class PromoteCmd(TypedDict):
    cmd: Literal["PROMOTE"]
    id: int


class DiscardCmd(TypedDict):
    cmd: Literal["DISCARD"]
    id: int


class HeartbeatCmd(TypedDict):
    cmd: Literal["HEARTBEAT"]
    id: int


class LogCmd(TypedDict):
    cmd: Literal["LOG"]
    id: int
    message: str
    level: str


class GetLogsCmd(TypedDict):
    cmd: Literal["GETLOGS"]
    id: int


class PartialCmd(TypedDict):
    cmd: Literal["PARTIAL"]
    id: int
    data: Any
    index: int | None


# -- queue control ---------------------------------------------------------------------------


class PauseCmd(TypedDict):
    cmd: Literal["PAUSE"]
    queue: str


class ResumeCmd(TypedDict):
    cmd: Literal["RESUME"]
    queue: str


class IsPausedCmd(TypedDict):
    cmd: Literal["ISPAUSED"]
    queue: str


class DrainCmd(TypedDict):
    cmd: Literal["DRAIN"]
    queue: str


class ObliterateCmd(TypedDict):
    cmd: Literal["OBLITERATE"]
    queue: str


class CleanCmd(TypedDict):
    cmd: Literal["CLEAN"]
    queue: str
    grace: int
    state: str
    limit: int | None


class ListQueuesCmd(TypedDict):
    cmd: Literal["LISTQUEUES"]


class RateLimitCmd(TypedDict):
    cmd: Literal["RATELIMIT"]
    queue: str
    limit: int


class RateLimitClearCmd(TypedDict):
    cmd: Literal["RATELIMITCLEAR"]
    queue: str


class SetConcurrencyCmd(TypedDict):
    cmd: Literal["SETCONCURRENCY"]
    queue: str
    limit: int


class ClearConcurrencyCmd(TypedDict):
    cmd: Literal["CLEARCONCURRENCY"]
    queue: str


# -- dead-letter queue -----------------------------------------------------------------------


class DlqCmd(TypedDict):
    cmd: Literal["DLQ"]
    queue: str
    count: int


class RetryDlqCmd(TypedDict):
    cmd: Literal["RETRYDLQ"]
    queue: str
    id: int | None


class PurgeDlqCmd(TypedDict):
    cmd: Literal["PURGEDLQ"]
    queue: str


# -- cron, flows, monitoring, pub/sub, auth --------------------------------------------------


class CronCmd(TypedDict):
    cmd: Literal["CRON"]
    name: str
    queue: str
    data: Any
    schedule: str | None
    repeat_every: int | None
    priority: int
    limit: int | None


class CronDeleteCmd(TypedDict):
    cmd: Literal["CRONDELETE"]
    name: str


class CronListCmd(TypedDict):
    cmd: Literal["CRONLIST"]


class FlowCmd(TypedDict):
    cmd: Literal["FLOW"]
    queue: str
    data: Any
    children: list[FlowChild]
    priority: int


class GetChildrenCmd(TypedDict):
    cmd: Literal["GETCHILDREN"]
    parent_id: int


class StatsCmd(TypedDict):
    cmd: Literal["STATS"]


class MetricsCmd(TypedDict):
    cmd: Literal["METRICS"]


class SubscribeCmd(TypedDict):
    cmd: Literal["SUBSCRIBE"]
    queue: str
    events: list[str]


class UnsubscribeCmd(TypedDict):
    cmd: Literal["UNSUBSCRIBE"]
    queue: str


class AuthCmd(TypedDict):
    cmd: Literal["AUTH"]
    token: str


class PingCmd(TypedDict):
    cmd: Literal["PING"]


# -- key/value -------------------------------------------------------------------------------


class KvSetCmd(TypedDict):
    cmd: Literal["KVSET"]
    key: str
    value: Any
    ttl: int | None


class KvGetCmd(TypedDict):
    cmd: Literal["KVGET"]
    key: str


class KvDelCmd(TypedDict):
    cmd: Literal["KVDEL"]
    key: str


class KvMgetCmd(TypedDict):
    cmd: Literal["KVMGET"]
    keys: list[str]


class KvMsetCmd(TypedDict):
    cmd: Literal["KVMSET"]
    entries: list[KvEntry]  # as sent, not normalized, when longer than KV_MAX_BATCH


class KvExistsCmd(TypedDict):
    cmd: Literal["KVEXISTS"]
    key: str


class KvExpireCmd(TypedDict):
    cmd: Literal["KVEXPIRE"]
    key: str
    ttl: int


class KvTtlCmd(TypedDict):
    cmd: Literal["KVTTL"]
    key: str


class KvKeysCmd(TypedDict):
    cmd: Literal["KVKEYS"]
    pattern: str | None


class KvIncrCmd(TypedDict):
    cmd: Literal["KVINCR"]
    key: str
    by: int


Command = (
    PushCmd
    | PushBatchCmd
    | PullCmd
    | PullBatchCmd
    | AckCmd
    | AckBatchCmd
    | FailCmd
    | GetJobCmd
    | GetStateCmd
    | GetResultCmd
    | GetJobByCustomIdCmd
    | GetJobsBatchCmd
    | GetJobsCmd
    | GetJobCountsCmd
    | CountCmd
    | WaitJobCmd
    | CancelCmd
    | ProgressCmd
    | GetProgressCmd
    | UpdateJobCmd
    | ChangePriorityCmd
    | MoveToDelayedCmd
    | PromoteCmd
    | DiscardCmd
    | HeartbeatCmd
    | LogCmd
    | GetLogsCmd
    | PartialCmd
    | PauseCmd
    | ResumeCmd
    | IsPausedCmd
    | DrainCmd
    | ObliterateCmd
    | CleanCmd
    | ListQueuesCmd
    | RateLimitCmd
    | RateLimitClearCmd
    | SetConcurrencyCmd
    | ClearConcurrencyCmd
    | DlqCmd
    | RetryDlqCmd
    | PurgeDlqCmd
    | CronCmd
    | CronDeleteCmd
    | CronListCmd
    | FlowCmd
    | GetChildrenCmd
    | StatsCmd
    | MetricsCmd
    | SubscribeCmd
    | UnsubscribeCmd
    | AuthCmd
    | PingCmd
    | KvSetCmd
    | KvGetCmd
    | KvDelCmd
    | KvMgetCmd
    | KvMsetCmd
    | KvExistsCmd
    | KvExpireCmd
    | KvTtlCmd
    | KvKeysCmd
    | KvIncrCmd
)
"""Any normalized command; narrow on `cmd`."""
