"""Crons (PROTOCOL §2.9): CRON, CRONDELETE, CRONLIST, and firing them on the cron tick.

A cron lives in the shard of its target queue. Firing pushes the job through the normal PUSH
path and advances ``next_run``/``executions`` in the same change set, so a restart can neither
lose nor repeat a run. The schedule maths is `cron` (pure functions).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import msgpack

from .cron import next_run_ms, validate_schedule
from .push import checked_queue, create_job
from .state import Handler, Reply, err, ok

if TYPE_CHECKING:
    from .state import ShardState

logger = logging.getLogger(__name__)

KEY_PREFIX = "c:"


class Cron:
    """One registered cron (the CronJob object of PROTOCOL §3.5)."""

    __slots__ = (
        "data",
        "executions",
        "limit",
        "name",
        "next_run",
        "priority",
        "queue",
        "repeat_every",
        "schedule",
    )

    def __init__(
        self,
        name: str,
        queue: str,
        data: Any,
        schedule: str | None,
        repeat_every: int | None,
        priority: int,
        next_run: int,
        executions: int,
        limit: int | None,
    ) -> None:
        self.name = name
        self.queue = queue
        self.data = data
        self.schedule = schedule
        self.repeat_every = repeat_every
        self.priority = priority
        self.next_run = next_run
        self.executions = executions
        self.limit = limit

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queue": self.queue,
            "data": self.data,
            "schedule": self.schedule,
            "repeat_every": self.repeat_every,
            "priority": self.priority,
            "next_run": self.next_run,
            "executions": self.executions,
            "limit": self.limit,
        }

    def pack(self) -> bytes:
        packed: bytes = msgpack.packb(
            [
                self.queue,
                self.data,
                self.schedule,
                self.repeat_every,
                self.priority,
                self.next_run,
                self.executions,
                self.limit,
            ],
            use_bin_type=True,
        )
        return packed

    @classmethod
    def unpack(cls, name: str, raw: bytes) -> Cron:
        queue, data, schedule, repeat_every, priority, next_run, executions, limit = (
            msgpack.unpackb(raw, raw=False, strict_map_key=False)
        )
        return cls(name, queue, data, schedule, repeat_every, priority, next_run, executions, limit)


def _save(st: ShardState, cron: Cron) -> None:
    st.changes[KEY_PREFIX + cron.name] = cron.pack()


def _delete(st: ShardState, name: str) -> None:
    del st.crons[name]
    st.changes[KEY_PREFIX + name] = None


def cmd_cron(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    """Register or replace (executions restart at 0) a cron; first run after now."""
    schedule = cmd.get("schedule")
    repeat_every = cmd.get("repeat_every")
    error = validate_schedule(schedule, repeat_every)
    if error is not None:
        return err(error)
    cron = Cron(
        cmd["name"],
        cmd["queue"],
        cmd.get("data"),
        schedule,
        repeat_every,
        cmd.get("priority") or 0,
        next_run_ms(schedule, repeat_every, now),
        0,
        cmd.get("limit"),
    )
    st.crons[cron.name] = cron
    _save(st, cron)
    return ok()


def cmd_crondelete(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    name = cmd["name"]
    if name not in st.crons:
        return err("Cron job not found")
    _delete(st, name)
    return ok()


def cmd_cronlist(
    st: ShardState, cmd: Mapping[str, Any], now: int, token: Hashable | None, conn: int | None
) -> Reply:
    return {"ok": True, "crons": [c.wire() for c in st.crons.values()]}


def fire_due(st: ShardState, now: int) -> None:
    """Cron tick: run each due cron once (missed runs are not replayed), then reschedule.

    A cron that reached its `limit` is deleted (right after its last run, or at its next due
    time if the limit was already reached, e.g. 0). A push that fails (invalid queue name,
    payload too large) counts as a run, as upstream, and is logged.
    """
    for cron in [c for c in st.crons.values() if c.next_run <= now]:
        if cron.limit is not None and cron.executions >= cron.limit:
            _delete(st, cron.name)
            continue
        q = checked_queue(st, cron.queue)
        result: int | str
        if isinstance(q, str):
            result = q
        else:
            fields = {"data": cron.data, "priority": cron.priority}
            result = create_job(st, q, fields, now, publish=True)
        if isinstance(result, str):
            logger.warning("cron %r: push to %r failed: %s", cron.name, cron.queue, result)
        cron.executions += 1
        if cron.limit is not None and cron.executions >= cron.limit:
            _delete(st, cron.name)
            continue
        cron.next_run = next_run_ms(cron.schedule, cron.repeat_every, now)
        _save(st, cron)


HANDLERS: dict[str, Handler] = {
    "CRON": cmd_cron,
    "CRONDELETE": cmd_crondelete,
    "CRONLIST": cmd_cronlist,
}
