"""Protocol conformance through the real server: queue control (§2.7), DLQ (§2.8), cron (§2.9),
pub/sub (§2.12) and the key/value store (§2.13).

See `test_conformance` for the conventions (helpers, ★ / §6.6 / xfail policy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flashq.protocol.routing import key_shard, process_of_shard
from tests.e2e.test_conformance import (
    CRON_KEYS,
    NPROCS,
    Wire,
    check_job,
    check_queue_info,
    is_int,
    now_ms,
    queue_on,
    serve_module,
)
from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_module(tmp_path_factory, "conformance-queues")


def listed(wire: Wire, queue: str) -> dict[str, Any] | None:
    infos = wire.ok("LISTQUEUES")["queues"]
    found = [q for q in infos if q["name"] == queue]
    assert len(found) <= 1
    return found[0] if found else None


# == §2.7: queue control ==========================================================================


def test_pause_resume_ispaused(wire: Wire, other: Wire) -> None:
    queue = queue_on(0, "pause")
    assert wire.ok("ISPAUSED", queue=queue) == {"ok": True, "paused": False}
    assert wire.ok("PAUSE", queue=queue) == {"ok": True}
    assert wire.ok("ISPAUSED", queue=queue) == {"ok": True, "paused": True}
    job_id = wire.push(queue, 1)  # pushes still accepted
    assert wire.ok("PULL", queue=queue, timeout=50) == {"ok": True, "job": None}
    wire.send({"cmd": "PULL", "queue": queue, "timeout": 10_000, "reqId": "blocked"})
    assert wire.nothing_pending(0.1)
    assert other.ok("RESUME", queue=queue) == {"ok": True}  # wakes the waiting puller
    reply = wire.read()
    assert reply["reqId"] == "blocked"
    assert reply["job"]["id"] == job_id
    assert wire.ok("ISPAUSED", queue=queue)["paused"] is False
    for cmd in ("PAUSE", "RESUME"):  # unknown queues: OK, nothing validated
        assert wire.ok(cmd, queue="no such queue!") == {"ok": True}
    assert wire.ok("ISPAUSED", queue="never-seen") == {"ok": True, "paused": False}


def test_drain(wire: Wire) -> None:
    queue = queue_on(1, "drain")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(3)])
    wire.push(queue, "later", delay=3_600_000, unique_key="du")
    active = wire.pull(queue)["id"]
    assert listed(wire, queue) is not None
    assert wire.ok("DRAIN", queue=queue) == {"ok": True, "count": 3}  # 2 waiting + 1 delayed
    assert wire.ok("COUNT", queue=queue)["count"] == 0
    assert wire.state(active) == "active"  # active jobs stay
    assert listed(wire, queue) is None  # gone from LISTQUEUES until the next push
    wire.push(queue, "again", unique_key="du")  # unique keys released
    assert listed(wire, queue) is not None
    assert wire.ok("DRAIN", queue="never-seen") == {"ok": True, "count": 0}


def test_obliterate(wire: Wire) -> None:
    queue = queue_on(0, "oblit")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i, "max_attempts": 1} for i in range(4)])
    wire.push(queue, "later", delay=3_600_000)
    active = wire.pull(queue)["id"]
    dead = wire.pull(queue)["id"]
    wire.ok("FAIL", id=dead)
    wire.ok("PAUSE", queue=queue)
    wire.ok("RATELIMIT", queue=queue, limit=5)
    wire.ok("SETCONCURRENCY", queue=queue, limit=2)
    wire.ok("CRON", name="oblit-cron", queue=queue, repeat_every=3_600_000, data=None)
    reply = wire.ok("OBLITERATE", queue=queue)
    assert reply == {"ok": True, "count": 5}  # 2 waiting, 1 delayed, 1 active, 1 DLQ
    assert wire.error("ACK", id=active) == f"Job {active} not found"
    assert wire.state(dead) == "unknown"
    assert wire.ok("ISPAUSED", queue=queue)["paused"] is False
    assert listed(wire, queue) is None
    assert "oblit-cron" not in [c["name"] for c in wire.ok("CRONLIST")["crons"]]
    wire.push(queue, "fresh")
    check_queue_info(listed(wire, queue), rate_limit=None, concurrency_limit=None, paused=False)


def test_clean(wire: Wire) -> None:
    """§6.6 fixes asserted: `waiting` and `delayed` are distinct; `completed` honours queue
    and grace. Upstream removes both kinds for either and forgets completions of all queues."""
    queue = queue_on(1, "clean")
    assert wire.error("CLEAN", queue=queue, grace=0, state="active") == (
        "Invalid state. Use: waiting, delayed, completed, failed"
    )
    ids = wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(4)])["ids"]
    delayed = wire.push(queue, "later", delay=3_600_000)
    assert wire.ok("CLEAN", queue=queue, grace=3_600_000, state="waiting") == {
        "ok": True,
        "count": 0,
    }
    assert wire.ok("CLEAN", queue=queue, grace=0, state="WAITING", limit=2) == {
        "ok": True,
        "count": 2,
    }
    assert [wire.state(i) for i in ids] == [
        "unknown",
        "unknown",
        "waiting",
        "waiting",
    ]  # oldest first
    assert wire.ok("CLEAN", queue=queue, grace=0, state="delayed") == {"ok": True, "count": 1}
    assert wire.state(delayed) == "unknown"
    assert wire.state(ids[2]) == "waiting"
    other_q = queue_on(0, "clean-other")
    other_done = wire.push(other_q, 1)
    wire.pull(other_q)
    wire.ok("ACK", id=other_done)
    for job_id in ids[2:]:
        wire.pull(queue)
        wire.ok("ACK", id=job_id)
    assert wire.ok("CLEAN", queue=queue, grace=3_600_000, state="completed")["count"] == 0
    assert wire.ok("CLEAN", queue=queue, grace=0, state="completed")["count"] == 2
    assert wire.state(other_done) == "completed"  # another queue's completions untouched
    dead = wire.push(queue, "dead", max_attempts=1)
    wire.pull(queue)
    wire.ok("FAIL", id=dead)
    assert wire.ok("CLEAN", queue=queue, grace=0, state="failed") == {"ok": True, "count": 1}
    assert wire.ok("DLQ", queue=queue)["jobs"] == []
    assert wire.ok("CLEAN", queue="never-seen", grace=0, state="failed") == {"ok": True, "count": 0}
    assert wire.request("CLEAN", queue=queue, state="failed")["error"].startswith("Invalid: ")


def test_clean_limit_zero_removes_nothing(wire: Wire) -> None:
    queue = queue_on(0, "clean0")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(3)])
    assert wire.ok("CLEAN", queue=queue, grace=0, state="waiting", limit=0) == {
        "ok": True,
        "count": 0,
    }
    assert wire.ok("COUNT", queue=queue)["count"] == 3


def test_listqueues_queue_info(wire: Wire) -> None:
    queue = queue_on(0, "listq")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i, "max_attempts": 1} for i in range(5)])
    wire.push(queue, "d", delay=3_600_000)
    done = wire.pull(queue)["id"]
    wire.ok("ACK", id=done)
    dead = wire.pull(queue)["id"]
    wire.ok("FAIL", id=dead)
    wire.pull(queue)
    wire.ok("PAUSE", queue=queue)
    wire.ok("RATELIMIT", queue=queue, limit=7)
    wire.ok("SETCONCURRENCY", queue=queue, limit=3)
    reply = wire.ok("LISTQUEUES")
    assert set(reply) == {"ok", "queues"}
    for info in reply["queues"]:
        check_queue_info(info)
    check_queue_info(
        listed(wire, queue), name=queue, pending=2, processing=1, completed=1, delayed=1, dlq=1,
        paused=True, rate_limit=7, concurrency_limit=3,
    )  # fmt: skip
    wire.ok("RATELIMITCLEAR", queue=queue)
    wire.ok("CLEARCONCURRENCY", queue=queue)
    check_queue_info(listed(wire, queue), rate_limit=None, concurrency_limit=None)
    wire.ok("PAUSE", queue=queue_on(1, "listq-only-paused"))
    assert listed(wire, queue_on(1, "listq-only-paused")) is None  # never received a job


def test_ratelimit(wire: Wire) -> None:
    queue = queue_on(1, "rate")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(6)])
    assert wire.ok("RATELIMIT", queue=queue, limit=0) == {"ok": True}  # 0 blocks PULL
    assert wire.ok("PULL", queue=queue, timeout=50)["job"] is None
    assert wire.ok("RATELIMITCLEAR", queue=queue) == {"ok": True}
    wire.pull(queue)
    wire.ok("RATELIMIT", queue=queue, limit=2)  # bucket of 2, refilled 2/s
    # §6.6 fix: PULLB honours the rate limit too (upstream: only PULL does)
    got = wire.ok("PULLB", queue=queue, count=5, timeout=0)["jobs"]
    assert len(got) == 2
    assert wire.ok("RATELIMITCLEAR", queue="never-seen") == {"ok": True}
    assert wire.request("RATELIMIT", queue=queue)["error"].startswith("Invalid: ")  # limit required


def test_concurrency(wire: Wire) -> None:
    queue = queue_on(0, "conc")
    wire.ok("PUSHB", queue=queue, jobs=[{"data": i} for i in range(4)])
    assert wire.ok("SETCONCURRENCY", queue=queue, limit=2) == {"ok": True}
    first = wire.pull(queue)["id"]
    assert len(wire.ok("PULLB", queue=queue, count=5, timeout=0)["jobs"]) == 1
    assert wire.ok("PULL", queue=queue, timeout=50)["job"] is None  # at the limit
    wire.ok("ACK", id=first)
    wire.pull(queue)  # a slot was freed
    assert wire.ok("CLEARCONCURRENCY", queue=queue) == {"ok": True}
    wire.pull(queue)
    assert wire.ok("CLEARCONCURRENCY", queue="never-seen") == {"ok": True}


# == §2.8: DLQ ====================================================================================


def dead_jobs(wire: Wire, queue: str, n: int) -> list[int]:
    ids: list[int] = wire.ok(
        "PUSHB", queue=queue, jobs=[{"data": i, "max_attempts": 1} for i in range(n)]
    )["ids"]
    for job_id in ids:
        assert wire.pull(queue)["id"] == job_id
        wire.ok("FAIL", id=job_id, error=f"err {job_id}")
    return ids


def test_dlq_lists_oldest_first(wire: Wire) -> None:
    queue = queue_on(1, "dlq")
    ids = dead_jobs(wire, queue, 3)
    reply = wire.ok("DLQ", queue=queue)
    assert set(reply) == {"ok", "jobs"}
    assert [check_job(j, attempts=1)["id"] for j in reply["jobs"]] == ids
    assert [j["id"] for j in wire.ok("DLQ", queue=queue, count=2)["jobs"]] == ids[:2]
    assert all(wire.state(i) == "failed" for i in ids)
    assert wire.ok("DLQ", queue="never-seen") == {"ok": True, "jobs": []}


def test_retrydlq(wire: Wire) -> None:
    """★ `count` next to upstream's packed `ids:[n]` (what Python/Go read)."""
    queue = queue_on(0, "retrydlq")
    ids = dead_jobs(wire, queue, 3)
    assert wire.ok("RETRYDLQ", queue=queue, id=ids[1]) == {"ok": True, "ids": [1], "count": 1}
    before = now_ms()
    check_job(wire.job(ids[1]), attempts=0)
    assert wire.job(ids[1])["run_at"] <= now_ms()
    assert wire.state(ids[1]) == "waiting"
    assert wire.ok("RETRYDLQ", queue=queue, id=ids[1]) == {"ok": True, "ids": [0], "count": 0}
    assert wire.ok("RETRYDLQ", queue=queue, id=6_000_006) == {"ok": True, "ids": [0], "count": 0}
    assert wire.ok("RETRYDLQ", queue=queue) == {"ok": True, "ids": [2], "count": 2}
    assert {wire.state(i) for i in ids} == {"waiting"}
    assert wire.job(ids[0])["run_at"] >= before
    assert wire.ok("RETRYDLQ", queue="never-seen") == {"ok": True, "ids": [0], "count": 0}


def test_purgedlq(wire: Wire) -> None:
    queue = queue_on(1, "purgedlq")
    ids = dead_jobs(wire, queue, 2)
    assert wire.ok("PURGEDLQ", queue=queue) == {"ok": True, "count": 2}
    assert [wire.state(i) for i in ids] == ["unknown", "unknown"]
    assert wire.ok("PURGEDLQ", queue=queue) == {"ok": True, "count": 0}


# == §2.9: cron ===================================================================================


def crons(wire: Wire) -> dict[str, dict[str, Any]]:
    reply = wire.ok("CRONLIST")
    assert set(reply) == {"ok", "crons"}
    out: dict[str, dict[str, Any]] = {}
    for cron in reply["crons"]:
        assert set(cron) == CRON_KEYS, cron
        assert cron["name"] not in out  # one cron per name, across shard processes
        out[cron["name"]] = cron
    return out


def test_cron_register_list_delete(wire: Wire) -> None:
    queue = queue_on(0, "cron")
    before = now_ms()
    assert wire.ok(
        "CRON", name="c-every", queue=queue, data={"k": 1}, repeat_every=3_600_000, priority=4,
        limit=10,
    ) == {"ok": True}  # fmt: skip
    after = now_ms()
    cron = crons(wire)["c-every"]
    assert {k: cron[k] for k in CRON_KEYS - {"next_run"}} == {
        "name": "c-every", "queue": queue, "data": {"k": 1}, "schedule": None,
        "repeat_every": 3_600_000, "priority": 4, "executions": 0, "limit": 10,
    }  # fmt: skip
    assert before + 3_600_000 <= cron["next_run"] <= after + 3_600_000
    wire.ok("CRON", name="c-sched", queue=queue, data=None, schedule="0 0 0 1 1 *")
    cron = crons(wire)["c-sched"]
    assert cron["schedule"] == "0 0 0 1 1 *"
    assert cron["repeat_every"] is None
    assert cron["next_run"] > now_ms()
    assert cron["next_run"] % 1000 == 0
    assert cron["priority"] == 0
    assert cron["limit"] is None
    assert wire.ok("CRONDELETE", name="c-every") == {"ok": True}
    assert wire.ok("CRONDELETE", name="c-sched") == {"ok": True}
    assert wire.error("CRONDELETE", name="c-every") == "Cron job not found"
    assert {"c-every", "c-sched"}.isdisjoint(crons(wire))


def test_cron_data_defaults_to_null(wire: Wire) -> None:
    """★ §6.3: Python and Go omit `data` when None; upstream would answer a parse error."""
    wire.ok("CRON", name="c-nodata", queue="cron-nodata", repeat_every=3_600_000)
    assert crons(wire)["c-nodata"]["data"] is None
    wire.ok("CRONDELETE", name="c-nodata")


def test_cron_errors(wire: Wire) -> None:
    def cron(**fields: Any) -> str:
        return wire.error("CRON", name="c-err", queue="cron-err", data=None, **fields)

    assert cron() == "Must provide either 'schedule' or 'repeat_every'"
    assert cron(schedule="*" * 300) == "Cron schedule too long (300 chars, max 256 chars)"
    assert cron(schedule="*/x") == "Invalid interval format: */x"
    assert cron(schedule="not a cron").startswith("Invalid cron expression 'not a cron': ")
    assert cron(schedule="61 * * * *").startswith("Invalid cron expression '61 * * * *': ")
    # a schedule is validated even when repeat_every wins
    assert cron(schedule="*/x", repeat_every=1000) == "Invalid interval format: */x"
    assert "c-err" not in crons(wire)
    assert wire.request("CRON", queue="q", repeat_every=1)["error"].startswith("Invalid: ")


def test_cron_schedule_forms(wire: Wire) -> None:
    """`*/N` seconds, 5 and 6 fields, macros. §6.6 fix: `*/5 * * * *` is a 5-field cron
    (upstream: "Invalid interval format")."""
    for i, schedule in enumerate(("*/30", "0 */5 * * *", "*/5 * * * *", "0 0 * * * *", "@daily")):
        wire.ok("CRON", name=f"c-form-{i}", queue="cron-forms", data=i, schedule=schedule)
    listed_crons = crons(wire)
    for i in range(5):
        assert listed_crons[f"c-form-{i}"]["next_run"] > now_ms()
        wire.ok("CRONDELETE", name=f"c-form-{i}")


def test_cron_replace_moves_between_shard_processes(wire: Wire) -> None:
    """A name is one cron: re-registering it for a queue of the other shard process replaces
    it (executions restart at 0) instead of leaving a copy behind."""
    q0, q1 = queue_on(0, "cron-move"), queue_on(1, "cron-move")
    wire.ok("CRON", name="c-move", queue=q0, data=1, repeat_every=3_600_000)
    wire.ok("CRON", name="c-move", queue=q1, data=2, repeat_every=7_200_000)
    cron = crons(wire)["c-move"]
    assert (cron["queue"], cron["data"], cron["repeat_every"]) == (q1, 2, 7_200_000)
    wire.ok("CRONDELETE", name="c-move")
    assert "c-move" not in crons(wire)


def test_cron_fires_into_its_queue(wire: Wire) -> None:
    queue = queue_on(1, "cron-fire")
    wire.ok("CRON", name="c-fire", queue=queue, data={"tick": 1}, repeat_every=100, priority=3)
    # The coordinator's cron tick is 1 s; a blocking PULL waits for the first run.
    job = wire.ok("PULL", queue=queue, timeout=5000)["job"]
    wire.ok("CRONDELETE", name="c-fire")
    check_job(job, queue=queue, data={"tick": 1}, priority=3)
    assert crons(wire).get("c-fire") is None


def test_cron_limit_deletes_after_last_run(wire: Wire) -> None:
    queue = queue_on(0, "cron-limit")
    wire.ok("CRON", name="c-limit", queue=queue, data="once", repeat_every=100, limit=1)
    assert wire.ok("PULL", queue=queue, timeout=5000)["job"]["data"] == "once"
    assert "c-limit" not in crons(wire)


# == §2.12: pub/sub ===============================================================================


def test_subscribe_unsubscribe_push_nothing(wire: Wire) -> None:
    queue = queue_on(0, "pubsub")
    assert wire.ok("SUBSCRIBE", queue=queue, events=["pushed", "completed"]) == {"ok": True}
    wire.push(queue, 1)
    assert wire.nothing_pending(0.2)  # no unsolicited frames on TCP (Go reads positionally)
    assert wire.ok("UNSUBSCRIBE", queue=queue) == {"ok": True}
    assert wire.request("SUBSCRIBE", queue=queue)["error"].startswith("Invalid: ")  # events


# == §2.13: key/value =============================================================================


def keys_on_both_processes(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}-{i}" for i in range(n)]
    assert {process_of_shard(key_shard(k), NPROCS) for k in keys} == {0, 1}
    return keys


def test_kvset_kvget_kvdel_kvexists(wire: Wire) -> None:
    assert wire.ok("KVSET", key="kv-a", value={"n": [1, 2]}) == {"ok": True}
    assert wire.ok("KVGET", key="kv-a") == {"ok": True, "value": {"n": [1, 2]}}
    assert wire.ok("KVEXISTS", key="kv-a") == {"ok": True, "exists": True}
    wire.ok("KVSET", key="kv-null", value=None)  # value required, null allowed
    assert wire.ok("KVGET", key="kv-null") == {"ok": True, "value": None}
    assert wire.ok("KVDEL", key="kv-a") == {"ok": True, "exists": True}
    assert wire.ok("KVDEL", key="kv-a") == {"ok": True, "exists": False}
    assert wire.ok("KVGET", key="kv-a") == {"ok": True, "value": None}
    assert wire.ok("KVEXISTS", key="kv-a") == {"ok": True, "exists": False}
    assert wire.request("KVSET", key="kv-b")["error"].startswith("Invalid: ")


def test_kv_errors(wire: Wire) -> None:
    assert wire.error("KVSET", key="", value=1) == "Key cannot be empty"
    assert wire.error("KVSET", key="k" * 1025, value=1) == "Key too long (1025 > 1024 bytes)"
    wire.ok("KVSET", key="é" * 512, value=1)  # 1024 bytes
    big = "x" * 10_485_759  # serialized: 10 485 761 bytes with the quotes
    assert (
        wire.error("KVSET", key="kv-big", value=big)
        == "Value too large (10485761 > 10485760 bytes)"
    )


def test_kv_ttl_and_expire(wire: Wire) -> None:
    wire.ok("KVSET", key="kv-ttl", value=1, ttl=600_000)
    ttl = wire.ok("KVTTL", key="kv-ttl")
    assert set(ttl) == {"ok", "ttl"}
    assert 599_000 < ttl["ttl"] <= 600_000
    wire.ok("KVSET", key="kv-nottl", value=1)
    assert wire.ok("KVTTL", key="kv-nottl") == {"ok": True, "ttl": -1}
    assert wire.ok("KVTTL", key="kv-missing") == {"ok": True, "ttl": -2}
    assert wire.ok("KVEXPIRE", key="kv-nottl", ttl=300_000) == {"ok": True, "exists": True}
    assert 299_000 < wire.ok("KVTTL", key="kv-nottl")["ttl"] <= 300_000
    assert wire.ok("KVEXPIRE", key="kv-missing", ttl=1) == {"ok": True, "exists": False}
    wire.ok("KVSET", key="kv-short", value=1, ttl=0)
    wire.ok("KVEXPIRE", key="kv-nottl", ttl=0)
    assert wire.request("KVEXPIRE", key="kv-nottl")["error"].startswith("Invalid: ")


def test_kvincr(wire: Wire) -> None:
    assert wire.ok("KVINCR", key="kv-ctr") == {"ok": True, "value": 1}  # created with by=1
    assert wire.ok("KVINCR", key="kv-ctr", by=-5) == {"ok": True, "value": -4}
    assert wire.ok("KVTTL", key="kv-ctr")["ttl"] == -1
    wire.ok("KVSET", key="kv-nullctr", value=None)
    assert wire.ok("KVINCR", key="kv-nullctr", by=3) == {"ok": True, "value": 3}  # null = 0
    wire.ok("KVSET", key="kv-float", value=1.5)
    assert wire.error("KVINCR", key="kv-float") == "Value is not an integer"
    wire.ok("KVSET", key="kv-str", value="7")
    assert wire.error("KVINCR", key="kv-str") == "Value is not a number"
    wire.ok("KVSET", key="kv-ttlctr", value=1, ttl=600_000)
    wire.ok("KVINCR", key="kv-ttlctr")
    assert wire.ok("KVTTL", key="kv-ttlctr")["ttl"] > 0  # an existing TTL is kept


def test_kvmset_kvmget_across_shards(wire: Wire) -> None:
    keys = keys_on_both_processes("kvm", 8)
    entries: list[dict[str, Any]] = [{"key": k, "value": i} for i, k in enumerate(keys)]
    entries.insert(3, {"key": "", "value": "skipped"})  # invalid entries are skipped silently
    entries.append({"key": "kvm-ttl", "value": "t", "ttl": 600_000})
    assert wire.ok("KVMSET", entries=entries) == {"ok": True, "count": 9}
    reply = wire.ok("KVMGET", keys=[keys[5], "kvm-missing", keys[0], "kvm-ttl", keys[5], keys[7]])
    assert reply == {"ok": True, "values": [5, None, 0, "t", 5, 7]}
    assert wire.ok("KVMGET", keys=[]) == {"ok": True, "values": []}
    too_many = [{"key": f"kvm-many-{i}", "value": i} for i in range(1001)]
    assert wire.error("KVMSET", entries=too_many) == "Too many entries (1001 > 1000)"
    assert wire.ok("KVGET", key="kvm-many-0") == {"ok": True, "value": None}  # nothing written


def test_kvmget_answers_first_1000_keys(wire: Wire) -> None:
    keys = [f"kvm1k-{i}" for i in range(1005)]
    wire.ok("KVMSET", entries=[{"key": k, "value": 1} for k in keys[:1000]])
    wire.ok("KVSET", key=keys[1003], value=2)
    values = wire.ok("KVMGET", keys=keys)["values"]
    assert values == [1] * 1000


def test_kvkeys_merged_with_glob(wire: Wire) -> None:
    keys = keys_on_both_processes("kvk-x", 6)
    wire.ok("KVMSET", entries=[{"key": k, "value": 1} for k in [*keys, "kvk-y", "kvk-xx-z"]])
    reply = wire.ok("KVKEYS", pattern="kvk-x-?")
    assert set(reply) == {"ok", "keys"}
    assert sorted(reply["keys"]) == sorted(keys)
    assert sorted(wire.ok("KVKEYS", pattern="kvk-*z")["keys"]) == ["kvk-xx-z"]
    everything = wire.ok("KVKEYS")["keys"]  # no pattern: all keys
    assert set(keys) | {"kvk-y", "kvk-xx-z"} <= set(everything)
    assert len(everything) == len(set(everything))
    assert all(isinstance(k, str) for k in everything)
    assert is_int(len(everything))
