"""Worker event callbacks: registration and emission (a failing callback is only logged)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

__all__ = ["EVENT_NAMES", "EventName", "Events"]

logger = logging.getLogger(__name__)

EventName = Literal[
    "ready", "active", "completed", "failed", "progress", "error", "stopping", "stopped"
]
EVENT_NAMES: Final = frozenset(
    {"ready", "active", "completed", "failed", "progress", "error", "stopping", "stopped"}
)

F = TypeVar("F", bound=Callable[..., Any])


class Events:
    """Callbacks per event name; sync or async, called in registration order.

    Arguments by event: `ready()`, `active(job)`, `completed(job, result)`,
    `failed(job, exc)`, `progress(job, progress)`, `error(exc)`, `stopping()`, `stopped()`.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}

    def on(self, event: EventName, fn: F) -> F:
        if event not in EVENT_NAMES:
            raise ValueError(f"unknown worker event {event!r}; one of {sorted(EVENT_NAMES)}")
        self._callbacks.setdefault(event, []).append(fn)
        return fn

    def wants(self, event: str) -> bool:
        """Whether anyone listens (lets the hot path skip building arguments)."""
        return event in self._callbacks

    async def emit(self, event: str, *args: Any) -> None:
        for fn in self._callbacks.get(event, ()):
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("worker %r callback %r failed", event, fn)
