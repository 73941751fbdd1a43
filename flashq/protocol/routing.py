"""Where a command goes: queue -> shard, job id -> shard, and merging scattered replies.

Pure functions shared by the acceptor (which routes between shard processes) and the shard
process (which routes between the logical shards it owns). crc32 and not `hash()`: the
mapping must be the same in every process and across restarts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

NSHARDS: Final = 32


def shard_of_queue(queue: str) -> int:
    return zlib.crc32(queue.encode("utf-8", "surrogatepass")) % NSHARDS


def shard_of_id(job_id: int) -> int:
    return job_id % NSHARDS


def process_of_shard(shard: int, nprocs: int) -> int:
    return shard % nprocs


def shards_of_process(index: int, nprocs: int) -> list[int]:
    return [s for s in range(NSHARDS) if s % nprocs == index]


#: Commands addressed by their `queue` field.
BY_QUEUE: Final = frozenset(
    {
        "PUSH", "PUSHB", "PULL", "PULLB", "GETJOBCOUNTS", "COUNT", "PAUSE", "RESUME",
        "ISPAUSED", "DRAIN", "OBLITERATE", "CLEAN", "RATELIMIT", "RATELIMITCLEAR",
        "SETCONCURRENCY", "CLEARCONCURRENCY", "DLQ", "RETRYDLQ", "PURGEDLQ", "SUBSCRIBE",
        "UNSUBSCRIBE", "CRON",
    }
)  # fmt: skip

#: Commands addressed by a job id in `id`.
BY_ID: Final = frozenset(
    {
        "ACK", "FAIL", "GETJOB", "GETSTATE", "GETRESULT", "WAITJOB", "CANCEL", "PROGRESS",
        "GETPROGRESS", "UPDATEJOB", "CHANGEPRIORITY", "MOVETODELAYED", "PROMOTE", "DISCARD",
        "HEARTBEAT", "LOG", "GETLOGS", "PARTIAL",
    }
)  # fmt: skip

#: Commands addressed by a KV key in `key`.
BY_KEY: Final = frozenset({"KVSET", "KVGET", "KVDEL", "KVEXISTS", "KVEXPIRE", "KVTTL", "KVINCR"})

#: Commands sent to every shard and merged.
SCATTER: Final = frozenset(
    {"STATS", "METRICS", "LISTQUEUES", "CRONLIST", "CRONDELETE", "GETJOBBYCUSTOMID", "KVKEYS"}
)

#: Commands the acceptor splits by id / key and reassembles in request order.
SPLIT: Final = frozenset({"ACKB", "GETJOBSBATCH", "KVMGET", "KVMSET"})

#: Commands that may wait for a long time inside a shard.
BLOCKING: Final = frozenset({"PULL", "PULLB", "WAITJOB"})


def key_shard(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % NSHARDS


def _sum(replies: Sequence[Mapping[str, Any]], field: str) -> int:
    return sum(int(r.get(field) or 0) for r in replies)


def _first_error(replies: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for r in replies:
        if not r.get("ok", False):
            return r
    return None


def merge_replies(cmd: Mapping[str, Any], replies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the replies of a scattered command into the one reply the client expects."""
    name = cmd["cmd"]
    if name != "CRONDELETE":
        err = _first_error(replies)
        if err is not None:
            return dict(err)
    if name == "STATS":
        out: dict[str, Any] = {"ok": True}
        for field in ("queued", "processing", "delayed", "dlq", "completed"):
            out[field] = _sum(replies, field)
        queues: dict[str, Any] = {}
        for r in replies:
            queues.update(r.get("queues") or {})
        out["queues"] = queues
        return out
    if name == "LISTQUEUES":
        return {"ok": True, "queues": [q for r in replies for q in r.get("queues", [])]}
    if name == "CRONLIST":
        return {"ok": True, "crons": [c for r in replies for c in r.get("crons", [])]}
    if name == "KVKEYS":
        return {"ok": True, "keys": [k for r in replies for k in r.get("keys", [])]}
    if name == "CRONDELETE":
        if any(r.get("ok") for r in replies):
            return {"ok": True}
        return {"ok": False, "error": "Cron job not found"}
    if name == "GETJOBBYCUSTOMID":
        for r in replies:
            if r.get("job") is not None:
                return dict(r)
        for r in replies:
            if r.get("state") not in (None, "unknown"):
                return dict(r)
        return {"ok": True, "job": None, "state": "unknown"}
    if name == "GETJOBS":
        return merge_getjobs(cmd, replies)
    if name == "METRICS":
        return merge_metrics(replies)
    raise ValueError(f"no merge rule for {name}")


def getjobs_window(cmd: Mapping[str, Any]) -> int:
    """How many newest jobs each shard must return for the merged page to be exact."""
    return int(cmd.get("offset") or 0) + (
        int(cmd["limit"]) if cmd.get("limit") is not None else 100
    )


def merge_getjobs(cmd: Mapping[str, Any], replies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Newest id first across shards; each shard was asked for offset+limit entries."""
    offset = int(cmd.get("offset") or 0)
    limit = int(cmd["limit"]) if cmd.get("limit") is not None else 100
    jobs = [j for r in replies for j in r.get("jobs", [])]
    jobs.sort(key=lambda j: j["id"], reverse=True)
    return {"ok": True, "jobs": jobs[offset : offset + limit], "total": _sum(replies, "total")}


def merge_metrics(replies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ms = [r.get("metrics") or {} for r in replies]
    completed = sum(int(m.get("total_completed", 0)) for m in ms)
    # Latency is a completion-weighted mean of the shards' means.
    latency = sum(
        float(m.get("avg_latency_ms", 0.0)) * int(m.get("total_completed", 0)) for m in ms
    )
    return {
        "ok": True,
        "metrics": {
            "total_pushed": sum(int(m.get("total_pushed", 0)) for m in ms),
            "total_completed": completed,
            "total_failed": sum(int(m.get("total_failed", 0)) for m in ms),
            "jobs_per_second": round(sum(float(m.get("jobs_per_second", 0.0)) for m in ms), 2),
            "avg_latency_ms": round(latency / completed, 2) if completed else 0.0,
            "queues": [q for m in ms for q in m.get("queues", [])],
        },
    }


def _split_key(name: str, item: Any) -> int:
    if name in ("ACKB", "GETJOBSBATCH"):
        return shard_of_id(int(item))
    if name == "KVMGET":
        return key_shard(str(item))
    return key_shard(str(item.get("key", "")) if isinstance(item, Mapping) else "")


_SPLIT_FIELD: Final = {"ACKB": "ids", "GETJOBSBATCH": "ids", "KVMGET": "keys", "KVMSET": "entries"}


def split_error(cmd: Mapping[str, Any]) -> dict[str, Any] | None:
    """Errors a split command must report for the whole request, before splitting."""
    if cmd["cmd"] == "KVMSET" and len(cmd["entries"]) > 1000:
        return {"ok": False, "error": f"Too many entries ({len(cmd['entries'])} > 1000)"}
    return None


def single_process_of_ids(obj: Mapping[str, Any], nprocs: int) -> int | None:
    """The one process owning every job id of an ACKB/GETJOBSBATCH request, if there is one.

    A worker's batch comes from one queue, so its ids usually live in one process: that
    process can then answer the request whole (it splits by shard itself), with no
    scatter, merge or re-encoding in the acceptor. None (use the general path, which also
    reports errors) unless `ids` is a non-empty list of valid ids in a single process.
    """
    if obj.get("cmd") not in ("ACKB", "GETJOBSBATCH"):
        return None
    ids = obj.get("ids")
    if type(ids) is not list or not ids:
        return None
    proc = -1
    for job_id in ids:
        if type(job_id) is not int or not 0 <= job_id < 1 << 64:
            return None
        p = job_id % NSHARDS % nprocs
        if p != proc:
            if proc != -1:
                return None
            proc = p
    return proc


def split_command(
    cmd: Mapping[str, Any], group: Callable[[int], int] | None = None
) -> dict[int, dict[str, Any]]:
    """Split a multi-item command into one sub-command per shard (or per `group(shard)`)."""
    name = cmd["cmd"]
    field = _SPLIT_FIELD[name]
    items = list(cmd[field])
    if name == "KVMGET":
        items = items[:1000]
    parts: dict[int, list[Any]] = {}
    for item in items:
        shard = _split_key(name, item)
        parts.setdefault(shard if group is None else group(shard), []).append(item)
    return {g: {**cmd, field: sub} for g, sub in parts.items()}


def join_split(
    cmd: Mapping[str, Any],
    parts: Mapping[int, Mapping[str, Any]],
    results: Mapping[int, Mapping[str, Any]],
) -> dict[str, Any]:
    """Reassemble the replies of `split_command` parts in the order of the original request."""
    name = cmd["cmd"]
    for r in results.values():
        if not r.get("ok", False):
            return dict(r)
    if name == "ACKB":
        n = sum(int(r.get("count", (r.get("ids") or [0])[0])) for r in results.values())
        return {"ok": True, "ids": [n], "count": n}
    if name == "KVMSET":
        return {"ok": True, "count": sum(int(r.get("count", 0)) for r in results.values())}
    if name == "GETJOBSBATCH":
        by_id = {j["id"]: j for r in results.values() for j in r.get("jobs", [])}
        return {"ok": True, "jobs": [by_id[i] for i in cmd["ids"] if i in by_id]}
    # KVMGET: each part's values line up with that part's keys.
    value_of: dict[str, Any] = {}
    for g, part in parts.items():
        values = results.get(g, {}).get("values", [])
        value_of.update(zip(part["keys"], values, strict=False))
    return {"ok": True, "values": [value_of.get(k) for k in list(cmd["keys"])[:1000]]}
