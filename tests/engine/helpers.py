"""Drive a ShardEngine the way the shard process does, on an injected clock.

Commands go through the real `flashq.protocol.commands.normalize`, so every test feeds the
engine exactly the dict shape it gets in production (defaults applied, aliases resolved).
Every call drains the effects: storage changes are applied to an in-memory dict (so any test
can reload a fresh engine from it), events, resolved waiters and outbox entries are collected.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import count
from typing import Any

from flashq.protocol.commands import normalize
from shards.engine import EngineConfig, ShardEngine

T0 = 1_700_000_000_000  # an arbitrary "now", Unix ms


def cmd(command: str, /, **fields: Any) -> dict[str, Any]:
    """A normalized command, as `normalize` hands it to the engine."""
    return normalize({"cmd": command, **fields})


class Harness:
    """One engine, its clock (`now`), its storage (`store`) and the effects it produced."""

    def __init__(
        self, shard: int = 0, *, now: int = T0, config: EngineConfig | None = None
    ) -> None:
        self.shard = shard
        self.config = config or EngineConfig()
        self.engine = ShardEngine(shard, config=self.config)
        self.now = now
        self.store: dict[str, bytes] = {}
        self.events: list[dict[str, Any]] = []
        self.resolved: dict[Hashable, dict[str, Any]] = {}
        self.outbox: list[tuple[int, dict[str, Any]]] = []
        self._tokens = count(1)

    # -- commands -----------------------------------------------------------------------

    def __call__(self, command: str, /, **fields: Any) -> dict[str, Any]:
        """Run a non-blocking command; fail the test if it parked a waiter."""
        reply = self.engine.execute(cmd(command, **fields), self.now, token=None, conn=None)
        self.drain()
        assert reply is not None, f"{command} unexpectedly blocked"
        return reply

    def raw(self, command: dict[str, Any], *, conn: int | None = None) -> dict[str, Any] | None:
        """Run an already-built (e.g. internal) command."""
        reply = self.engine.execute(command, self.now, token=next(self._tokens), conn=conn)
        self.drain()
        return reply

    def block(self, command: str, /, *, conn: int | None = 1, **fields: Any) -> int:
        """Run a command that must park a waiter; return the waiter's token."""
        token, reply = self.try_block(command, conn=conn, **fields)
        assert reply is None, f"{command} answered at once: {reply}"
        return token

    def try_block(
        self, command: str, /, *, conn: int | None = 1, **fields: Any
    ) -> tuple[int, dict[str, Any] | None]:
        """Run a possibly blocking command: (token, immediate reply or None if parked)."""
        token = next(self._tokens)
        reply = self.engine.execute(cmd(command, **fields), self.now, token=token, conn=conn)
        self.drain()
        return token, reply

    def push(self, queue: str = "q", data: Any = None, **options: Any) -> int:
        reply = self("PUSH", queue=queue, data=data, **options)
        assert reply["ok"], reply
        job_id: int = reply["id"]
        return job_id

    def pull(self, queue: str = "q") -> dict[str, Any] | None:
        """PULL without waiting: the job object, or None."""
        reply = self("PULL", queue=queue, timeout=0)
        job: dict[str, Any] | None = reply["job"]
        return job

    def pull_id(self, queue: str = "q") -> int | None:
        job = self.pull(queue)
        return None if job is None else int(job["id"])

    def state(self, job_id: int) -> str:
        state: str = self("GETSTATE", id=job_id)["state"]
        return state

    def counts(self, queue: str = "q") -> dict[str, int]:
        reply = self("GETJOBCOUNTS", queue=queue)
        counts: dict[str, int] = reply["counts"]
        return counts

    # -- time and effects ----------------------------------------------------------------

    def advance(self, ms: int) -> None:
        """Let time pass, expiring waiters as the process would."""
        self.now += ms
        self.engine.expire_waiters(self.now)
        self.drain()

    def tick(self, kind: str) -> None:
        self.engine.tick(kind, self.now)
        self.drain()

    def drain(self) -> None:
        # The shard process collects only from engines that say they have effects: every
        # engine test checks that they say so exactly when there is something to take.
        said = self.engine.has_effects()
        changes, events = self.engine.take_changes(), self.engine.take_events()
        resolved, outbox = self.engine.take_resolved(), self.engine.take_outbox()
        assert said == bool(changes or events or resolved or outbox)
        assert not self.engine.has_effects()
        for key, value in changes.items():
            if value is None:
                self.store.pop(key, None)
            else:
                self.store[key] = value
        self.events.extend(events)
        for token, reply in resolved:
            assert token not in self.resolved, f"token {token} answered twice"
            self.resolved[token] = reply
        self.outbox.extend(outbox)
        self.engine.settle()  # as the shard process does once it has replied

    def event_types(self) -> list[str]:
        return [e["event_type"] for e in self.events]

    def reloaded(self) -> Harness:
        """A fresh engine loaded from this one's storage, at the same time."""
        fresh = Harness(self.shard, now=self.now, config=self.config)
        fresh._tokens = self._tokens  # tokens stay unique across the restart
        fresh.resolved = self.resolved  # (answers before the crash stay visible)
        fresh.engine.load(dict(self.store), self.now)
        fresh.store = dict(self.store)
        fresh.drain()
        return fresh


class Cluster:
    """Several shard engines and the outbox delivery between them (the process's job)."""

    def __init__(self, shards: list[int], *, now: int = T0) -> None:
        self.shards = {s: Harness(s, now=now) for s in shards}

    def __getitem__(self, shard: int) -> Harness:
        return self.shards[shard]

    def deliver(self, *, twice: bool = False) -> int:
        """Deliver outboxes until none is left (each message twice if asked: at-least-once)."""
        delivered = 0
        while True:
            pending = [(t, c) for hs in self.shards.values() for t, c in hs.outbox]
            for hs in self.shards.values():
                hs.outbox.clear()
            if not pending:
                return delivered
            for target, command in pending:
                for _ in range(2 if twice else 1):
                    reply = self.shards[target].raw(command)
                    assert reply is not None, command
                    assert reply["ok"], (command, reply)
                delivered += 1

    def set_now(self, now: int) -> None:
        for hs in self.shards.values():
            hs.now = now
