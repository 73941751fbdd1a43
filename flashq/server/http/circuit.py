"""A circuit breaker per webhook URL (PROTOCOL §5.8), pure: the caller passes the time.

Closed: deliveries go out; 5 consecutive failures open it. Open: deliveries are skipped for
30 s. Then half-open: deliveries go out again; 2 successes close it, one failure re-opens it
for another 30 s. Only URLs that failed have an entry, so the table stays as small as the
set of unhealthy receivers.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

FAILURES_TO_OPEN: Final = 5
OPEN_S: Final = 30.0
SUCCESSES_TO_CLOSE: Final = 2

State = Literal["closed", "open", "half-open"]


@attrs.define
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    successes: int = 0


@attrs.define
class CircuitBreaker:
    failures_to_open: int = FAILURES_TO_OPEN
    open_s: float = OPEN_S
    successes_to_close: int = SUCCESSES_TO_CLOSE
    _circuits: dict[str, _Circuit] = attrs.field(factory=dict)

    def state(self, url: str, now: float) -> State:
        circuit = self._circuits.get(url)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        return "open" if now - circuit.opened_at < self.open_s else "half-open"

    def allow(self, url: str, now: float) -> bool:
        """May a delivery to `url` go out at `now`?"""
        return self.state(url, now) != "open"

    def record(self, url: str, ok: bool, now: float) -> None:
        """The outcome of one delivery attempt to `url`."""
        circuit = self._circuits.get(url)
        if circuit is None:
            if ok:
                return
            circuit = self._circuits[url] = _Circuit()
        if circuit.opened_at is not None:  # half-open (or a straggler while open)
            if not ok:
                circuit.opened_at = now
                circuit.successes = 0
                return
            circuit.successes += 1
            if circuit.successes >= self.successes_to_close:
                del self._circuits[url]
            return
        if ok:
            del self._circuits[url]
            return
        circuit.failures += 1
        if circuit.failures >= self.failures_to_open:
            circuit.opened_at = now

    def open_count(self, now: float) -> int:
        return sum(1 for url in self._circuits if self.state(url, now) == "open")
