"""ACK, ACKB and FAIL (PROTOCOL §2.4), with ACKB acting like ACK (events, flows: §6.6 fix)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from .job import ACTIVE
from .lifecycle import complete, count_failure
from .state import Handler, Reply, err, ok

if TYPE_CHECKING:
    from .state import ShardState


def cmd_ack(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found")
    complete(st, job, now, cmd.get("result"))
    return ok()


def cmd_ackb(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Acknowledge every active job listed; unknown ids are skipped."""
    acked = 0
    active = st.active
    for job_id in cmd.get("ids") or ():
        job = active.get(job_id)
        if job is not None and job.state == ACTIVE:
            complete(st, job, now, None)
            acked += 1
    return {"ok": True, "ids": [acked], "count": acked}


def cmd_fail(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    job_id = cmd["id"]
    job = st.active.get(job_id)
    if job is None:
        return err(f"Job {job_id} not found")
    count_failure(st, job, now, cmd.get("error"))
    return ok()


HANDLERS: dict[str, Handler] = {"ACK": cmd_ack, "ACKB": cmd_ackb, "FAIL": cmd_fail}
