"""Errors only the SDK raises; everything the server says maps into `flashq.errors`."""

from __future__ import annotations

from flashq.errors import FlashQError, UnavailableError

__all__ = ["ClientClosedError", "ConnectError", "Retry"]


class ConnectError(UnavailableError, OSError):
    """The server could not be reached (refused, unreachable, TLS or connect timeout).

    Also an `OSError`, so code written against plain sockets keeps catching it.
    """


class ClientClosedError(FlashQError):
    """The client was closed by its owner; a bug in the caller, not a network event."""


class Retry(Exception):
    """Raised by a worker handler to ask for the job to be run again later.

    Not logged or reported as a failure. With a delay the job goes back to the queue,
    eligible after `delay_s` seconds, and its `attempts` counter is left as it is
    (MOVETODELAYED, PROTOCOL.md §2.6): a handler that always asks for a retry keeps the
    job alive forever. Without a delay the job is failed with the server's backoff
    (FAIL: `attempts` grows and `max_attempts` eventually sends it to the DLQ).

    Args:
        delay_s: seconds to wait before the job is eligible again (alias: `delay`).
        message: stored as the failure text when no delay is given.
    """

    def __init__(
        self, delay_s: float | None = None, *, delay: float | None = None, message: str = ""
    ) -> None:
        if delay_s is None:
            delay_s = delay
        if delay_s is not None and delay_s < 0:
            raise ValueError("Retry delay must be >= 0")
        self.delay_s = delay_s
        self.message = message or "retry requested"
        super().__init__(self.message)

    @property
    def delay_ms(self) -> int | None:
        """The delay in whole milliseconds, as the wire wants it."""
        return None if self.delay_s is None else round(self.delay_s * 1000)
