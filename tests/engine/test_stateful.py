"""Random command sequences against a small reference model of one queue.

The model is deliberately naive (a list of jobs, sorted on every pull) so it is obviously
right; the engine must agree with it after every step on: the state of every job, the counts,
which job each pull (and each blocked puller) gets, and that no job is lost or duplicated.
A white-box check also verifies the engine's own structures (each job in exactly one place).
Restarts (load from the records written so far) are part of the random sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shards.engine.job import ACTIVE, COMPLETED, FAILED, WAITING
from shards.engine.pqueue import ready_entry
from tests.engine.helpers import Harness

Q = "q"


@dataclass
class MJob:
    id: int
    priority: int
    run_at: int
    lifo: bool
    group: str | None
    max_attempts: int
    backoff: int
    remove_on_complete: bool
    remove_on_fail: bool
    ttl: int
    created_at: int
    state: str = "waiting"  # waiting | active | failed | completed | gone
    attempts: int = 0

    def key(self) -> tuple[int, int, int]:
        return (-self.priority, self.run_at, -self.id if self.lifo else self.id)


@dataclass
class MWaiter:
    token: int
    count: int
    deadline: int
    conn: int


job_options = st.fixed_dictionaries(
    {
        "priority": st.integers(-2, 3),
        "delay": st.sampled_from([0, 0, 0, 50, 200]),
        "max_attempts": st.sampled_from([0, 1, 2]),
        "backoff": st.sampled_from([0, 0, 10]),
        "lifo": st.booleans(),
        "group_id": st.sampled_from([None, "g1", "g1", "g2"]),
        "remove_on_complete": st.sampled_from([False, False, False, True]),
        "remove_on_fail": st.sampled_from([False, False, False, True]),
        # TTL only on jobs without a group: the model cannot tell when the engine meets a
        # parked job again (the group + TTL case has its own unit test)
        "ttl": st.sampled_from([0, 0, 0, 120]),
    }
).map(lambda o: {**o, "ttl": 0} if o["group_id"] is not None else o)


class EngineVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.jobs: dict[int, MJob] = {}
        self.paused = False
        self.concurrency: int | None = None
        self.waiters: list[MWaiter] = []
        self.expected: dict[int, list[int]] = {}  # token -> job ids its reply must carry

    # -- model ----------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.h.now

    def m_select(self, count: int) -> list[int]:
        if self.paused:
            return []
        active = [j for j in self.jobs.values() if j.state == "active"]
        if self.concurrency is not None:
            count = min(count, self.concurrency - len(active))
        busy = {j.group for j in active if j.group is not None}
        out: list[int] = []
        due = [j for j in self.jobs.values() if j.state == "waiting" and j.run_at <= self.now]
        for job in sorted(due, key=MJob.key):
            if len(out) >= count:
                break
            if job.ttl and self.now - job.created_at > job.ttl:
                job.state = "gone"  # met during selection after its TTL: dropped
                continue
            if job.group is not None and job.group in busy:
                continue
            job.state = "active"
            if job.group is not None:
                busy.add(job.group)
            out.append(job.id)
        return out

    def m_serve(self) -> None:
        while self.waiters:
            got = self.m_select(self.waiters[0].count)
            if not got:
                break
            self.expected[self.waiters.pop(0).token] = got

    def m_fail(self, job: MJob) -> None:
        job.attempts += 1
        if job.max_attempts and job.attempts >= job.max_attempts:
            job.state = "gone" if job.remove_on_fail else "failed"
        else:
            job.state = "waiting"
            if job.backoff:
                job.run_at = self.now + job.backoff * 2 ** min(job.attempts, 10)

    def ids(self, *states: str) -> list[int]:
        return sorted(i for i, j in self.jobs.items() if not states or j.state in states)

    def pick(self, data: st.DataObject, *states: str) -> int:
        pool = [*self.ids(*states), 987_654]  # plus an id that never existed
        picked: int = data.draw(st.sampled_from(pool))
        return picked

    # -- rules ----------------------------------------------------------------------------

    def _add(self, job_id: int, opts: dict[str, Any]) -> None:
        assert job_id not in self.jobs
        assert all(job_id > i for i in self.jobs)
        self.jobs[job_id] = MJob(
            job_id,
            opts["priority"],
            self.now + opts["delay"],
            opts["lifo"],
            opts["group_id"],
            opts["max_attempts"],
            opts["backoff"],
            opts["remove_on_complete"],
            opts["remove_on_fail"],
            opts["ttl"],
            self.now,
        )

    @rule(opts=job_options)
    def push(self, opts: dict[str, Any]) -> None:
        self._add(self.h.push(Q, None, **opts), opts)
        self.m_serve()

    @rule(batch=st.lists(job_options, min_size=1, max_size=4))
    def pushb(self, batch: list[dict[str, Any]]) -> None:
        ids = self.h("PUSHB", queue=Q, jobs=batch)["ids"]
        assert len(ids) == len(batch)
        for job_id, opts in zip(ids, batch, strict=True):
            self._add(job_id, opts)
        self.m_serve()

    @rule(count=st.integers(1, 4))
    def pull_more(self, count: int) -> None:
        """Pulls are most of real traffic, and what exercises selection: weigh them double."""
        self.pull(count)

    @rule(count=st.integers(1, 4))
    def pull(self, count: int) -> None:
        expected = [] if self.waiters else self.m_select(count)
        if count == 1:
            job = self.h.pull(Q)
            assert (None if job is None else [job["id"]]) == (expected or None)
        else:
            got = self.h("PULLB", queue=Q, count=count, timeout=0)["jobs"]
            assert [j["id"] for j in got] == expected

    @rule(
        count=st.integers(1, 3),
        timeout=st.sampled_from([60, 400]),
        conn=st.sampled_from([1, 2]),
    )
    def blocking_pull(self, count: int, timeout: int, conn: int) -> None:
        expected = [] if self.waiters else self.m_select(count)
        kind = "PULL" if count == 1 else "PULLB"
        fields: dict[str, Any] = {"queue": Q, "timeout": timeout}
        if kind == "PULLB":
            fields["count"] = count
        token, reply = self.h.try_block(kind, conn=conn, **fields)
        if expected:
            assert reply is not None
            got = [reply["job"]["id"]] if kind == "PULL" else [j["id"] for j in reply["jobs"]]
            assert got == expected
        else:
            assert reply is None, reply
            self.waiters.append(MWaiter(token, count, self.now + timeout, conn))

    @rule(data=st.data(), result=st.sampled_from([None, 1, {"r": [1]}]))
    def ack(self, data: st.DataObject, result: Any) -> None:
        job_id = self.pick(data, "active", "waiting")
        reply = self.h("ACK", id=job_id, result=result)
        job = self.jobs.get(job_id)
        if job is not None and job.state == "active":
            assert reply == {"ok": True}
            job.state = "gone" if job.remove_on_complete else "completed"
            self.m_serve()
        else:
            assert reply == {"ok": False, "error": f"Job {job_id} not found"}

    @rule(data=st.data())
    def ackb(self, data: st.DataObject) -> None:
        pool = [*self.ids("active", "waiting", "completed"), 987654]
        ids = data.draw(st.lists(st.sampled_from(pool), max_size=4, unique=True))
        acked = [i for i in ids if i in self.jobs and self.jobs[i].state == "active"]
        assert self.h("ACKB", ids=ids) == {"ok": True, "ids": [len(acked)], "count": len(acked)}
        for job_id in acked:
            job = self.jobs[job_id]
            job.state = "gone" if job.remove_on_complete else "completed"
        self.m_serve()

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        job_id = self.pick(data, "active", "failed")
        reply = self.h("FAIL", id=job_id, error="e")
        job = self.jobs.get(job_id)
        if job is not None and job.state == "active":
            assert reply == {"ok": True}
            self.m_fail(job)
            self.m_serve()
        else:
            assert reply["ok"] is False

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = self.pick(data)
        reply = self.h("CANCEL", id=job_id)
        job = self.jobs.get(job_id)
        if job is None or job.state == "gone":
            assert reply == {"ok": False, "error": f"Job {job_id} not found"}
        elif job.state in ("completed", "failed"):
            assert reply["ok"] is False
            assert "cannot be cancelled" in reply["error"]
        else:
            assert reply == {"ok": True}
            job.state = "gone"
            self.m_serve()

    @rule(data=st.data())
    def promote(self, data: st.DataObject) -> None:
        job_id = self.pick(data, "waiting", "active")
        reply = self.h("PROMOTE", id=job_id)
        job = self.jobs.get(job_id)
        if job is not None and job.state == "waiting" and job.run_at > self.now:
            assert reply == {"ok": True}
            job.run_at = self.now
            self.m_serve()
        else:
            assert reply["ok"] is False

    @rule(data=st.data(), priority=st.integers(-3, 4))
    def change_priority(self, data: st.DataObject, priority: int) -> None:
        job_id = self.pick(data)
        reply = self.h("CHANGEPRIORITY", id=job_id, priority=priority)
        job = self.jobs.get(job_id)
        if job is None or job.state in ("gone", "completed"):
            assert reply["ok"] is False
        else:
            assert reply == {"ok": True}
            job.priority = priority

    @rule(data=st.data(), delay=st.sampled_from([0, 30, 300]))
    def move_to_delayed(self, data: st.DataObject, delay: int) -> None:
        job_id = self.pick(data, "active")
        reply = self.h("MOVETODELAYED", id=job_id, delay=delay)
        job = self.jobs.get(job_id)
        if job is not None and job.state == "active":
            assert reply == {"ok": True}
            job.state = "waiting"
            job.run_at = self.now + delay
            self.m_serve()
        else:
            assert reply["ok"] is False

    @rule(data=st.data())
    def discard(self, data: st.DataObject) -> None:
        job_id = self.pick(data)
        reply = self.h("DISCARD", id=job_id)
        job = self.jobs.get(job_id)
        if job is not None and job.state in ("waiting", "active"):
            assert reply == {"ok": True}
            job.state = "failed"
            self.m_serve()
        else:
            assert reply["ok"] is False

    @rule()
    def pause(self) -> None:
        self.h("PAUSE", queue=Q)
        self.paused = True

    @rule()
    def resume(self) -> None:
        self.h("RESUME", queue=Q)
        self.paused = False
        self.m_serve()

    @rule(limit=st.one_of(st.none(), st.integers(1, 3)))
    def concurrency_limit(self, limit: int | None) -> None:
        if limit is None:
            self.h("CLEARCONCURRENCY", queue=Q)
        else:
            self.h("SETCONCURRENCY", queue=Q, limit=limit)
        self.concurrency = limit
        self.m_serve()

    @rule(data=st.data(), one=st.booleans())
    def retry_dlq(self, data: st.DataObject, one: bool) -> None:
        if one:
            job_id = self.pick(data, "failed")
            targets = [job_id] if job_id in self.ids("failed") else []
            reply = self.h("RETRYDLQ", queue=Q, id=job_id)
        else:
            targets = self.ids("failed")
            reply = self.h("RETRYDLQ", queue=Q)
        assert reply == {"ok": True, "ids": [len(targets)], "count": len(targets)}
        for job_id in targets:
            job = self.jobs[job_id]
            job.state, job.attempts, job.run_at = "waiting", 0, self.now
        self.m_serve()

    @rule(dt=st.sampled_from([1, 10, 50, 100, 300]))
    def advance(self, dt: int) -> None:
        """What the process does as time passes: wakeup tick, then expire waiters."""
        self.h.now += dt
        self.h.tick("wakeup")
        self.m_serve()
        self.h.engine.expire_waiters(self.now)
        self.h.drain()
        for w in [w for w in self.waiters if w.deadline <= self.now]:
            self.waiters.remove(w)
            self.expected[w.token] = []

    @rule(conn=st.sampled_from([1, 2]))
    def connection_closed(self, conn: int) -> None:
        self.h.engine.cancel_conn(conn)
        self.waiters = [w for w in self.waiters if w.conn != conn]

    @precondition(lambda self: bool(self.ids("active")))
    @rule(data=st.data())
    def requeue_undelivered(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids("active")), min_size=1, unique=True))
        self.h.engine.requeue(ids, self.now)
        self.h.drain()
        for job_id in ids:
            self.jobs[job_id].state = "waiting"
        self.m_serve()

    @rule()
    def restart(self) -> None:
        """Crash and reload: active jobs come back waiting; blocked pullers are gone."""
        self.h = self.h.reloaded()
        for job in self.jobs.values():
            if job.state == "active":
                job.state = "waiting"
        self.waiters.clear()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def blocked_pullers_got_the_right_jobs(self) -> None:
        got = {
            token: [reply["job"]["id"]]
            if "job" in reply and reply["job"] is not None
            else [j["id"] for j in reply.get("jobs", [])]
            for token, reply in self.h.resolved.items()
        }
        assert got == self.expected

    @invariant()
    def every_job_in_its_state(self) -> None:
        wire = {"waiting": "waiting", "active": "active", "failed": "failed"}
        for job_id, job in self.jobs.items():
            expected = wire.get(job.state, job.state)
            if job.state == "gone":
                expected = "unknown"
            elif job.state == "waiting" and job.run_at > self.now:
                expected = "delayed"
            assert self.h.state(job_id) == expected, job

    @invariant()
    def counts_match(self) -> None:
        waiting = [j for j in self.jobs.values() if j.state == "waiting"]
        expected = {
            "waiting": sum(1 for j in waiting if j.run_at <= self.now),
            "active": len(self.ids("active")),
            "delayed": sum(1 for j in waiting if j.run_at > self.now),
            "completed": len(self.ids("completed")),
            "failed": len(self.ids("failed")),
        }
        assert self.h.counts(Q) == expected

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        listed = self.h("GETJOBS", queue=Q, limit=1000)
        ids = [j["id"] for j in listed["jobs"]]
        assert len(ids) == len(set(ids)) == listed["total"]
        assert set(ids) == {i for i, j in self.jobs.items() if j.state != "gone"}

    @invariant()
    def engine_structures_are_consistent(self) -> None:
        check_structures(self.h)


def check_structures(h: Harness) -> None:
    """Each job is in exactly the structures its state says, and the counters agree."""
    state = h.engine._st
    for q in state.queues.values():
        heaps = [q.ready, q.delayed, *q.parked.values()]
        live = {id(heap): 0 for heap in heaps}
        n_waiting = 0
        for job in q.jobs.values():
            assert job.state != COMPLETED
            if job.state == WAITING:
                n_waiting += 1
                assert job.heap is not None
                assert id(job.heap) in live
                assert any(e is job.entry for e in job.heap.items)
                live[id(job.heap)] += 1
            else:
                assert job.heap is None
                assert job.entry is None
            assert (job.id in q.active) == (job.state == ACTIVE) == (job.id in state.active)
            assert (job.id in q.dlq) == (job.state == FAILED)
        assert all(live[id(heap)] == heap.live for heap in heaps)
        assert all(heap.live for heap in q.parked.values())
        assert q.n_waiting == n_waiting
        for job in q.completed.values():
            assert job.state == COMPLETED
            assert job.id in state.completed
        groups = {j.group_id: j.id for j in q.active.values() if j.group_id is not None}
        assert q.active_groups == groups
        assert q.live_waiters == sum(1 for w in q.waiters if not w.done)
        # while a group is free, its best waiting job is in the ready heap
        for group, heap in q.parked.items():
            if group in q.active_groups:
                continue
            best_parked = min(ready_entry(j)[:3] for j in heap)
            ready = [ready_entry(j)[:3] for j in q.ready if j.group_id == group]
            assert ready, group
            assert min(ready) < best_parked, group
    assert len(state.jobs) == sum(len(q.jobs) + len(q.completed) for q in state.queues.values())


EngineVsModel.TestCase.settings = settings(
    settings(),  # the loaded profile (tests/conftest.py): "dev" or "ci"
    stateful_step_count=50,
    deadline=None,
)
TestEngineVsModel = EngineVsModel.TestCase
