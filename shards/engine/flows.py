"""Dependencies and flows across shards: the internal commands, and GETCHILDREN.

A job's dependencies and a flow's children may live in other logical shards. Those facts
travel as internal commands (``cmd`` starting with ``_``, never accepted from clients), emitted
through ``take_outbox()`` and delivered by the process to the target shard's ``execute``.
Delivery is at-least-once, so every one of them is idempotent.

Cross-shard facts (engine to engine):

``{"cmd": "_WATCH", "id": dep, "notify": shard}``
    To the shard owning job ``dep``: "tell ``shard`` when ``dep`` completes". Answered at once
    with ``_DEPDONE`` when ``dep`` is already completed; otherwise remembered (persisted with
    ``dep``) and answered when it completes. Unknown ``dep``: ignored (the dependent waits, as
    upstream does for a dependency that never completes).
``{"cmd": "_DEPDONE", "id": dep}``
    Job ``dep`` completed: dependents of this shard waiting only for it become waiting.
``{"cmd": "_CHILDDONE", "parent_id": p, "child_id": c}``
    Flow child ``c`` completed (ACK or ACKB): counted once by parent ``p``; the parent becomes
    waiting when all its children are done (log "All children completed, parent job ready").

FLOW, orchestrated by the acceptor (each reply is ``{"ok": false, "error": ...}`` on failure):

1. ``{"cmd": "_FLOWPARENT", "queue", "data", "priority", "children_count", "job_id"?}`` to the
   parent queue's shard -> ``{"ok": true, "parent_id": id}``. The parent is created in state
   waiting-children. ``children_count`` >= 1 ("Flow must have at least one child" otherwise).
   An optional custom ``job_id`` makes a retry return the same parent.
2. ``{"cmd": "_FLOWCHILD", **PUSH fields, "parent_id": id}`` to each child queue's shard ->
   ``{"ok": true, "id": child_id}``: an ordinary push with ``parent_id`` set.
3. ``{"cmd": "_FLOWCHILDREN", "parent_id": id, "children_ids": [...]}`` to the parent's shard
   -> OK: records the children ids (children completing before this arrives are counted too).

GETCHILDREN on the parent's shard answers ``parent_id, children_ids, completed, total``; the
acceptor adds ``children`` (Job objects of children not yet completed) with GETJOBSBATCH.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from .job import COMPLETED, PARENT
from .lifecycle import child_done, dep_done, release_parent_if_done
from .push import checked_queue, create_job
from .state import Handler, Reply, err, ok

if TYPE_CHECKING:
    from .state import ShardState


def cmd_watch(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    notify = cmd["notify"]
    job = st.jobs.get(job_id)
    if job is None:
        return ok()
    if job.state == COMPLETED:
        st.outbox.append((notify, {"cmd": "_DEPDONE", "id": job_id}))
        return ok()
    watchers = job.watchers
    if watchers is None:
        job.watchers = [notify]
        st.dirty.add(job_id)
    elif notify not in watchers:
        watchers.append(notify)
        st.dirty.add(job_id)
    return ok()


def cmd_depdone(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    dep_done(st, cmd["id"], now)
    return ok()


def cmd_childdone(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    child_done(st, cmd["parent_id"], cmd["child_id"], now)
    return ok()


def cmd_flowparent(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    count = cmd.get("children_count") or 0
    if count <= 0:
        return err("Flow must have at least one child")
    q = checked_queue(st, cmd["queue"])
    if isinstance(q, str):
        return err(q)
    fields = {"data": cmd.get("data"), "priority": cmd.get("priority"), "job_id": cmd.get("job_id")}
    result = create_job(st, q, fields, now, publish=False, children=count)
    if isinstance(result, str):
        return err(result)
    return {"ok": True, "parent_id": result}


def cmd_flowchild(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    q = checked_queue(st, cmd["queue"])
    if isinstance(q, str):
        return err(q)
    result = create_job(st, q, cmd, now, publish=True, parent_id=cmd["parent_id"])
    if isinstance(result, str):
        return err(result)
    return {"ok": True, "id": result}


def cmd_flowchildren(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    parent_id = cmd["parent_id"]
    parent = st.jobs.get(parent_id)
    if parent is None:
        return err(f"Parent job {parent_id} not found")
    ids = list(cmd.get("children_ids") or ())
    if parent.children_ids != ids:
        parent.children_ids = ids
        if ids:
            parent.children_total = len(ids)
        st.dirty.add(parent_id)
        if parent.state == PARENT:
            release_parent_if_done(st, parent, now)
    return ok()


def cmd_getchildren(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    parent_id = cmd["parent_id"]
    parent = st.jobs.get(parent_id)
    if parent is None or parent.state == COMPLETED or parent.children_total <= 0:
        return err(f"Parent job {parent_id} not found")
    done = parent.done_children
    return {
        "ok": True,
        "parent_id": parent_id,
        "children_ids": parent.children_ids,
        "completed": len(done) if done else 0,
        "total": parent.children_total,
    }


HANDLERS: dict[str, Handler] = {
    "_WATCH": cmd_watch,
    "_DEPDONE": cmd_depdone,
    "_CHILDDONE": cmd_childdone,
    "_FLOWPARENT": cmd_flowparent,
    "_FLOWCHILD": cmd_flowchild,
    "_FLOWCHILDREN": cmd_flowchildren,
    "GETCHILDREN": cmd_getchildren,
}
