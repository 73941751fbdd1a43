"""The acceptor's event hub: one stream of job events from every shard process, fanned out.

Shard processes send their engines' events (after the commit that made them true) on their
link to the acceptor; `EventHub.publish` hands each event to every subscriber whose filter
matches. Each subscriber has a bounded buffer: a consumer that falls behind loses the oldest
events and its `dropped` counter says how many, so a slow browser tab never grows the
acceptor's memory.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

Event = dict[str, Any]
EventFilter = Callable[[Event], bool]

#: Events buffered per subscriber before the oldest are dropped.
DEFAULT_BUFFER = 1024


@attrs.define(eq=False)
class Subscription:
    accepts: EventFilter
    buffer: collections.deque[Event]
    dropped: int = 0
    _wakeup: trio.Event = attrs.field(factory=trio.Event)
    closed: bool = False

    def offer(self, event: Event) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1
        self.buffer.append(event)
        self._wakeup.set()

    async def receive_batch(self) -> list[Event]:
        """Wait for at least one event and return everything buffered."""
        while not self.buffer:
            if self.closed:
                raise trio.EndOfChannel
            await self._wakeup.wait()
            self._wakeup = trio.Event()
        items = list(self.buffer)
        self.buffer.clear()
        return items

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()


@attrs.define
class EventHub:
    subscriptions: set[Subscription] = attrs.field(factory=set)
    published: int = 0
    #: Listeners called synchronously for every event (webhooks); must not block.
    listeners: list[Callable[[Event], None]] = attrs.field(factory=list)
    #: Told whenever `wanted` flips, so shard processes build events only while it is true:
    #: making, sending and decoding events nobody reads cost a third of a PUSHB's CPU.
    on_demand: Callable[[bool], None] | None = None
    _demand: set[str] = attrs.field(factory=set)
    _wanted: bool = False

    def want(self, reason: str, on: bool) -> None:
        """A listener declares it needs events (`on`) or no longer does."""
        if on:
            self._demand.add(reason)
        else:
            self._demand.discard(reason)
        self._update()

    def _update(self) -> None:
        """Someone reads events: a subscriber, or a listener that said `want` (webhooks)."""
        wanted = bool(self.subscriptions or self._demand)
        if wanted != self._wanted:
            self._wanted = wanted
            if self.on_demand is not None:
                self.on_demand(wanted)

    def subscribe(
        self, accepts: EventFilter | None = None, buffer: int = DEFAULT_BUFFER
    ) -> Subscription:
        sub = Subscription(accepts or (lambda _e: True), collections.deque(maxlen=buffer))
        self.subscriptions.add(sub)
        self._update()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        sub.close()
        self._update()

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.published += 1
            for listener in self.listeners:
                listener(event)
            for sub in self.subscriptions:
                if sub.accepts(event):
                    sub.offer(event)

    def statistics(self) -> dict[str, int]:
        return {
            "subscribers": len(self.subscriptions),
            "wanted": int(self._wanted),
            "published": self.published,
            "dropped": sum(s.dropped for s in self.subscriptions),
        }


def queue_filter(queue: str | None) -> EventFilter:
    if queue is None:
        return lambda _e: True
    return lambda e: e.get("queue") == queue


def job_filter(job_id: int, types: set[str] | None) -> EventFilter:
    return lambda e: e.get("job_id") == job_id and (types is None or e.get("event_type") in types)
