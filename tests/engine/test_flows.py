"""Dependencies (`depends_on`) and flows, within a shard and across shards (internal commands)."""

from __future__ import annotations

from typing import Any

from tests.engine.helpers import Cluster, Harness

# Queue names by logical shard (crc32 % 32), so the cluster tests route like production.
Q0, Q1 = "q9", "q45"


def _ack(h: Harness, queue: str, **fields: Any) -> int:
    job = h.pull(queue)
    assert job is not None
    h("ACK", id=job["id"], **fields)
    return int(job["id"])


def test_same_shard_dependency_released_on_ack(h: Harness) -> None:
    dep = h.push()
    other = h.push("other")
    job_id = h.push(depends_on=[dep, other])
    assert h.state(job_id) == "waiting-children"
    assert h.counts()["waiting"] == 1  # only `dep`
    _ack(h, "q")
    assert h.state(job_id) == "waiting-children"
    _ack(h, "other")
    # §6.6: the released job has its real state at once
    assert h.state(job_id) == "waiting"
    assert h("GETJOB", id=job_id)["job"]["depends_on"] == [dep, other]
    assert h.pull_id() == job_id


def test_dependency_already_completed_does_not_wait(h: Harness) -> None:
    dep = h.push()
    _ack(h, "q")
    assert h.state(h.push(depends_on=[dep])) == "waiting"


def test_dependent_of_failed_dependency_keeps_waiting(h: Harness) -> None:
    dep = h.push(max_attempts=1)
    job_id = h.push(depends_on=[dep])
    h.pull()
    h("FAIL", id=dep)
    assert h.state(job_id) == "waiting-children"


def test_released_dependent_wakes_a_puller(h: Harness) -> None:
    dep = h.push("deps")
    job_id = h.push(depends_on=[dep])
    token = h.block("PULL", queue="q", timeout=5000)
    _ack(h, "deps")
    assert h.resolved[token]["job"]["id"] == job_id


def test_cross_shard_dependency() -> None:
    c = Cluster([0, 1])
    dep = c[1].push(Q1)
    job_id = c[0].push(Q0, depends_on=[dep])
    assert c[0].outbox == [(1, {"cmd": "_WATCH", "id": dep, "notify": 0})]
    c.deliver(twice=True)
    assert c[0].state(job_id) == "waiting-children"
    _ack(c[1], Q1)
    assert c[1].outbox == [(0, {"cmd": "_DEPDONE", "id": dep})]
    c.deliver(twice=True)
    assert c[0].state(job_id) == "waiting"


def test_cross_shard_watch_after_completion_answers_at_once() -> None:
    c = Cluster([0, 1])
    dep = c[1].push(Q1)
    _ack(c[1], Q1)
    job_id = c[0].push(Q0, depends_on=[dep])
    c.deliver()
    assert c[0].state(job_id) == "waiting"


def test_cross_shard_dependency_survives_restarts_on_both_sides() -> None:
    c = Cluster([0, 1])
    dep = c[1].push(Q1)
    job_id = c[0].push(Q0, depends_on=[dep])
    c.deliver()
    # the dependent's shard restarts: it asks again (harmless duplicate)
    c.shards[0] = c[0].reloaded()
    assert c[0].outbox == [(1, {"cmd": "_WATCH", "id": dep, "notify": 0})]
    c.deliver()
    # the dependency's shard restarts: it still knows who to tell
    c.shards[1] = c[1].reloaded()
    _ack(c[1], Q1)
    c.deliver()
    assert c[0].state(job_id) == "waiting"


def _flow(c: Cluster, parent_shard: int, children: list[tuple[int, str]]) -> tuple[int, list[int]]:
    """What the acceptor does for FLOW."""
    parent = c[parent_shard].raw(
        {"cmd": "_FLOWPARENT", "queue": Q0, "data": {"p": 1}, "priority": 0,
         "children_count": len(children)}
    )  # fmt: skip
    assert parent is not None
    assert parent["ok"]
    parent_id = parent["parent_id"]
    ids = []
    for shard, queue in children:
        reply = c[shard].raw(
            {"cmd": "_FLOWCHILD", "queue": queue, "data": None, "parent_id": parent_id}
        )
        assert reply is not None
        assert reply["ok"]
        ids.append(reply["id"])
    done = c[parent_shard].raw(
        {"cmd": "_FLOWCHILDREN", "parent_id": parent_id, "children_ids": ids}
    )
    assert done == {"ok": True}
    return parent_id, ids


def test_flow_parent_waits_for_all_children_across_shards() -> None:
    c = Cluster([0, 1])
    parent_id, (local, remote) = _flow(c, 0, [(0, Q0), (1, Q1)])
    assert c[0].state(parent_id) == "waiting-children"
    children = c[0]("GETCHILDREN", parent_id=parent_id)
    assert children == {
        "ok": True,
        "parent_id": parent_id,
        "children_ids": [local, remote],
        "completed": 0,
        "total": 2,
    }
    child = c[1].pull(Q1)
    assert child is not None
    assert child["parent_id"] == parent_id
    c[1]("ACKB", ids=[remote])  # §6.6: ACKB advances flows too
    c.deliver(twice=True)
    assert c[0]("GETCHILDREN", parent_id=parent_id)["completed"] == 1
    assert c[0].state(parent_id) == "waiting-children"
    assert c[0].pull_id(Q0) == local
    c[0]("ACK", id=local)
    assert c[0].state(parent_id) == "waiting"
    assert c[0]("GETLOGS", id=parent_id)["logs"][-1]["message"] == (
        "All children completed, parent job ready"
    )
    assert c[0].pull_id(Q0) == parent_id


def test_child_completing_before_children_ids_arrive_is_counted() -> None:
    c = Cluster([0, 1])
    parent = c[0].raw(
        {"cmd": "_FLOWPARENT", "queue": Q0, "data": None, "priority": 0, "children_count": 1}
    )
    assert parent is not None
    parent_id = parent["parent_id"]
    child = c[1].raw({"cmd": "_FLOWCHILD", "queue": Q1, "data": None, "parent_id": parent_id})
    assert child is not None
    _ack(c[1], Q1)
    c.deliver()
    assert c[0].state(parent_id) == "waiting"
    c[0].raw({"cmd": "_FLOWCHILDREN", "parent_id": parent_id, "children_ids": [child["id"]]})
    assert c[0].state(parent_id) == "waiting"
    assert c[0]("GETJOB", id=parent_id)["job"]["children_ids"] == [child["id"]]


def test_flow_state_survives_restart() -> None:
    c = Cluster([0, 1])
    parent_id, (_first, _second) = _flow(c, 0, [(0, Q0), (0, Q0)])
    _ack(c[0], Q0)
    c.shards[0] = c[0].reloaded()
    assert c[0]("GETCHILDREN", parent_id=parent_id)["completed"] == 1
    _ack(c[0], Q0)
    assert c[0].state(parent_id) == "waiting"


def test_flow_errors(h: Harness) -> None:
    reply = h.raw(
        {"cmd": "_FLOWPARENT", "queue": "q", "data": None, "priority": 0, "children_count": 0}
    )
    assert reply == {"ok": False, "error": "Flow must have at least one child"}
    assert h("GETCHILDREN", parent_id=5) == {"ok": False, "error": "Parent job 5 not found"}
    plain = h.push()
    assert h("GETCHILDREN", parent_id=plain)["ok"] is False
