"""Busy polling: an event loop that has just written keeps polling for a moment before it
sleeps in epoll.

Why: a request crosses three processes (client, acceptor, shard process) and back, and on
a VM like our 2-vCPU benchmark host a process asleep in epoll takes ~30 µs to run again once
its socket is readable. A sequential PUSH paid four such wake-ups: 268 µs round trip from a
blocking client, 138 µs with the acceptor and the shard processes polling for 200 µs after
each write. The reply to what a process just sent, or the next request of a client that
just got its reply, usually arrives inside that window.

Each poll is one pass of the Trio scheduler (an epoll_wait with a zero timeout) after a
sched_yield, so any other process runnable on this CPU goes first. An idle server never
polls; a loaded one is rarely idle long enough to. The cost is CPU time on lightly loaded
servers (at most one window per write), which is why it is a setting: `--busy-poll-us 0`
turns it off. A process confined to one CPU never polls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import trio


class BusyPoll:
    def __init__(self, window_us: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.window_s = window_us / 1e6
        self._clock = clock
        self._until = 0.0
        self._wake = trio.Event()
        self.polling = False
        #: Scheduler passes spent polling (a gauge of what the window costs).
        self.polls = 0

    def kick(self) -> None:
        """Something was written: poll until one window from now."""
        self._until = self._clock() + self.window_s
        if not self.polling:
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            self.polling = True
            try:
                while self._clock() < self._until:
                    os.sched_yield()
                    await trio.lowlevel.checkpoint()
                    self.polls += 1
            finally:
                self.polling = False


#: This process's poller while `serve` runs; writers call `kick()` without knowing of it.
_poller: BusyPoll | None = None


def kick() -> None:
    if _poller is not None:
        _poller.kick()


def polls() -> int:
    """Scheduler passes this process has spent polling (for its statistics)."""
    return 0 if _poller is None else _poller.polls


def usable(window_us: int) -> bool:
    """Whether to poll at all: not with a window of 0, nor in a process confined to one CPU,
    where the poller would hold the CPU the reply has to be computed on (measured there:
    sequential round trips 10% slower, pipelined throughput unchanged)."""
    return window_us > 0 and _cpus() > 1


def _cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one, as Linux)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


async def serve(window_us: int) -> None:
    """Run the process's poller until cancelled, if it is `usable`."""
    global _poller
    if not usable(window_us):
        return
    _poller = BusyPoll(window_us)
    try:
        await _poller.run()
    finally:
        _poller = None
