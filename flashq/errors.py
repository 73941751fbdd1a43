"""The FlashQError tree, shared by the server, the shard processes and the SDK.

Each branch is something a caller can handle differently; `error_from_text` maps a wire error
text to the class the upstream SDKs would raise for it (PROTOCOL.md §6.4), so the server and
the SDK agree on what an error means without a numeric code on the wire.
"""

from __future__ import annotations


class FlashQError(Exception):
    """Root of every error flashQ raises."""


class ProtocolError(FlashQError):
    """A request or frame that does not follow the wire protocol (bad JSON, wrong type ...)."""


class ValidationError(FlashQError):
    """A well-formed request whose values are refused (queue name, payload size ...)."""


class AuthenticationError(FlashQError):
    """Missing or wrong token."""


class NotFoundError(FlashQError):
    """The job, queue or cron named does not exist (or is not in the required state)."""


class ConflictError(FlashQError):
    """Duplicate unique key, debounced push, existing custom id."""


class UnavailableError(FlashQError):
    """The server or one of its shard processes cannot serve the request right now; retry."""


class ConnectionClosedError(UnavailableError):
    """The connection dropped while a request was in flight; the request may or may not have run."""


class StorageError(FlashQError):
    """Persistent storage is unreadable or corrupt."""


class ServerError(FlashQError):
    """Any other error reply from the server."""


class TimeoutError_(FlashQError):  # avoids shadowing the builtin TimeoutError
    """A blocking wait or a request ran out of time."""


def error_from_text(text: str) -> FlashQError:
    """Classify a server error text the way the upstream SDKs do (PROTOCOL.md §6.4)."""
    low = text.lower()
    cls: type[FlashQError]
    if "auth" in low or "unauthorized" in low or "invalid token" in low:
        cls = AuthenticationError
    elif "not found" in low or "not in processing" in low or "is not delayed" in low:
        cls = NotFoundError
    elif "duplicate" in low or "already exists" in low or "debounced" in low:
        cls = ConflictError
    elif "unavailable" in low:
        cls = UnavailableError
    elif "timeout" in low or "timed out" in low:
        cls = TimeoutError_
    elif (
        text.startswith(("Invalid", "MessagePack deserialize error", "Message too large"))
        or "must" in low
        or "too large" in low
        or "too long" in low
        or "cannot be empty" in low
    ):
        cls = ValidationError
    else:
        cls = ServerError
    return cls(text)
