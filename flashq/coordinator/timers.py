"""The coordinator process: leadership (trivial on one host) and the periodic ticks.

It holds no job state: every tick is a `_TICK` request to each shard process, which applies
it to all its logical shards (DESIGN.md, timer table). A tick is not re-sent to a process
while the previous one of the same kind is unanswered, so a slow shard never piles them up.
Killing the coordinator only pauses the ticks; crons are fired by the shards on the `cron`
tick and advance their persisted next run in the same commit, so a restart never fires a
schedule twice.
"""

from __future__ import annotations

import logging
import signal
from typing import Final

import trio

from flashq.config import Settings
from flashq.procsetup import watch_parent
from flashq.server.shard_link import ShardLink

log = logging.getLogger("flashq.coordinator")

#: kind -> period in seconds (DESIGN.md "timer" table).
TICKS: Final = {"wakeup": 0.1, "timeout": 0.5, "cron": 1.0, "metrics": 5.0, "cleanup": 60.0}


async def tick_loop(link: ShardLink, kind: str, period_s: float) -> None:
    in_flight = False

    def done(_: object) -> None:
        nonlocal in_flight
        in_flight = False

    while True:
        await trio.sleep(period_s)
        if in_flight or not link.up:
            continue
        in_flight = True
        link.send(0, None, 0, -1, {"cmd": "_TICK", "kind": kind}, done)


async def serve(settings: Settings) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_parent)
            for i in range(settings.shard_procs):
                lk = ShardLink(i, settings.shard_socket(i), "coordinator")
                await nursery.start(lk.run)
                for kind, period in TICKS.items():
                    nursery.start_soon(tick_loop, lk, kind, period)
            log.info("coordinator leading %d shard processes", settings.shard_procs)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
