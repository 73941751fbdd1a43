"""Busy polling: the poller spins while the window lasts and parks after it (clock injected)."""

from __future__ import annotations

import trio
import trio.testing

from flashq.busypoll import BusyPoll


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _passes(n: int) -> None:
    for _ in range(n):
        await trio.lowlevel.checkpoint()


async def test_polls_until_the_window_ends_then_parks() -> None:
    clock = FakeClock()
    poller = BusyPoll(200, clock=clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        await trio.testing.wait_all_tasks_blocked()
        assert not poller.polling  # idle: nothing kicked it
        assert poller.polls == 0

        poller.kick()
        await _passes(20)
        assert poller.polling
        assert poller.polls >= 10  # one poll per scheduler pass while inside the window

        clock.now += 150e-6  # still inside the window
        await _passes(5)
        assert poller.polling

        clock.now += 100e-6  # past it: the poller parks and stops counting
        await trio.testing.wait_all_tasks_blocked()
        assert not poller.polling
        parked_at = poller.polls
        await _passes(5)
        assert poller.polls == parked_at
        nursery.cancel_scope.cancel()


async def test_a_kick_while_polling_extends_the_window() -> None:
    clock = FakeClock()
    poller = BusyPoll(200, clock=clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        poller.kick()
        await _passes(3)
        clock.now += 150e-6
        poller.kick()  # the window now ends 200 µs after this kick
        clock.now += 100e-6  # 250 µs after the first kick, 100 µs after the second
        await _passes(5)
        assert poller.polling
        clock.now += 150e-6
        await trio.testing.wait_all_tasks_blocked()
        assert not poller.polling
        nursery.cancel_scope.cancel()
