"""The inputs of the SDK: client, push, flow and worker options, with their wire mapping."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypedDict, final

import attrs

if TYPE_CHECKING:
    import ssl  # the import costs ~30 ms, and every server process imports this module

__all__ = [
    "ClientOptions",
    "ClientOpts",
    "ConnectionOpts",
    "FlowChild",
    "PushOptions",
    "PushOpts",
    "WorkerOptions",
    "WorkerOpts",
]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 6789


@final
@attrs.frozen
class ClientOptions:
    """How a client reaches the server. Durations are seconds (`_s`).

    Attributes:
        host, port: the server's TCP address.
        token: sent with AUTH first on every new connection.
        binary: MessagePack frames instead of JSON lines (smaller, faster for big payloads).
        ssl_context: wrap connections in TLS with this context.
        pool_size: connections per client; calls are spread round-robin. One connection
            already pipelines any number of calls, so more only helps CPU-bound servers.
        connect_timeout_s: one TCP (+TLS, +AUTH) connection attempt.
        request_timeout_s: how long a call waits for its reply, on top of any server-side
            wait it asked for (PULL, WAITJOB); None waits forever.
        reconnect: reopen a dropped connection on the next call, retrying with backoff.
        reconnect_timeout_s: how long a call keeps retrying before it fails.
        reconnect_delay_s, reconnect_max_delay_s: first and largest backoff step.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    binary: bool = False
    ssl_context: ssl.SSLContext | None = None
    pool_size: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    connect_timeout_s: float = 5.0
    request_timeout_s: float | None = 30.0
    reconnect: bool = True
    reconnect_timeout_s: float = 30.0
    reconnect_delay_s: float = 0.05
    reconnect_max_delay_s: float = 2.0

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> ClientOptions:
        """Options from a dict of our field names or the upstream SDK's (`use_binary`,
        `timeout` ms ...). Unknown keys raise ValueError, naming the key."""
        ours = attrs.fields_dict(cls)
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key in ours:
                kwargs[key] = value
            elif key in _UPSTREAM_MS:
                kwargs[_UPSTREAM_MS[key]] = None if value is None else value / 1000
            elif key == "use_binary":
                kwargs["binary"] = bool(value)
            elif key == "auto_reconnect":
                kwargs["reconnect"] = bool(value)
            elif key == "use_http":
                if value:
                    raise ValueError("use_http is not supported by this SDK: use TCP")
            elif key not in _UPSTREAM_IGNORED:
                raise ValueError(f"unknown client option {key!r}")
        return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientOptions:
        """Options from `FLASHQ_HOST`, `FLASHQ_PORT`, `FLASHQ_TOKEN` (defaults otherwise)."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {
            "host": env.get("FLASHQ_HOST", DEFAULT_HOST),
            "port": int(env.get("FLASHQ_PORT", DEFAULT_PORT)),
            "token": env.get("FLASHQ_TOKEN") or None,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def coerce(
        cls, value: ClientOptions | Mapping[str, Any] | None, **kwargs: Any
    ) -> ClientOptions:
        """`value` as ClientOptions, with `kwargs` (our field names) applied on top."""
        if value is None:
            base = cls()
        elif isinstance(value, ClientOptions):
            base = value
        else:
            base = cls.from_mapping(value)
        return attrs.evolve(base, **kwargs) if kwargs else base


class ConnectionOpts(TypedDict, total=False):
    """Keyword form of `ClientOptions` but the address and token."""

    binary: bool
    ssl_context: ssl.SSLContext | None
    pool_size: int
    connect_timeout_s: float
    request_timeout_s: float | None
    reconnect: bool
    reconnect_timeout_s: float
    reconnect_delay_s: float
    reconnect_max_delay_s: float


class ClientOpts(ConnectionOpts, total=False):
    """Keyword form of `ClientOptions` (same names, same meaning)."""

    host: str
    port: int
    token: str | None


_UPSTREAM_MS: Final = {
    "timeout": "request_timeout_s",
    "connect_timeout": "connect_timeout_s",
    "reconnect_delay": "reconnect_delay_s",
    "max_reconnect_delay": "reconnect_max_delay_s",
}
# Upstream options with no counterpart here (HTTP mode, request queueing while offline,
# logging): accepted so an upstream options dict works unchanged.
_UPSTREAM_IGNORED: Final = frozenset(
    {
        "http_port",
        "max_reconnect_attempts",
        "queue_on_disconnect",
        "max_queued_requests",
        "log_level",
    }
)


class PushOpts(TypedDict, total=False):
    """Keyword options of `push` (PROTOCOL.md §2.1); ms for every duration."""

    priority: int
    delay: int
    ttl: int
    timeout: int
    max_attempts: int
    backoff: int
    unique_key: str
    depends_on: Sequence[int]
    tags: Sequence[str]
    lifo: bool
    remove_on_complete: bool
    remove_on_fail: bool
    stall_timeout: int
    debounce_id: str
    debounce_ttl: int
    job_id: str
    keep_completed_age: int
    keep_completed_count: int
    group_id: str


@final
@attrs.frozen
class PushOptions:
    """Options of one job, as upstream's `PushOptions` (ms for every duration).

    Every field defaults to None: not sent, so the server's default applies (notably
    `max_attempts` 0 = retry forever, `backoff` 0). `job_id` is a custom id, unique per
    queue: pushing it again returns the existing job's id.
    """

    priority: int | None = None
    delay: int | None = None
    ttl: int | None = None
    timeout: int | None = None
    max_attempts: int | None = None
    backoff: int | None = None
    unique_key: str | None = None
    depends_on: Sequence[int] | None = None
    tags: Sequence[str] | None = None
    lifo: bool | None = None
    remove_on_complete: bool | None = None
    remove_on_fail: bool | None = None
    stall_timeout: int | None = None
    debounce_id: str | None = None
    debounce_ttl: int | None = None
    job_id: str | None = None
    keep_completed_age: int | None = None
    keep_completed_count: int | None = None
    group_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The fields that are set, under their wire names."""
        return _clean({f: getattr(self, f) for f in _PUSH_FIELDS})


_PUSH_FIELDS: Final = tuple(attrs.fields_dict(PushOptions))
_SEQUENCE_FIELDS: Final = frozenset({"depends_on", "tags"})


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key not in _PUSH_FIELDS:
            raise TypeError(f"unknown push option {key!r}")
        out[key] = list(value) if key in _SEQUENCE_FIELDS else value
    return out


def job_fields(
    data: Any, options: PushOptions | Mapping[str, Any] | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The wire fields of one job: `data`, then `options`, then keyword options on top."""
    fields: dict[str, Any] = {"data": data}
    if options is not None:
        fields.update(options.to_wire() if isinstance(options, PushOptions) else _clean(options))
    if extra:
        fields.update(_clean(extra))
    return fields


@final
@attrs.frozen
class FlowChild:
    """One child of a flow (FLOW): its queue, data, and optional priority / delay (ms)."""

    queue: str
    data: Any = None
    priority: int = 0
    delay: int | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queue": self.queue, "data": self.data, "priority": self.priority}
        if self.delay is not None:
            out["delay"] = self.delay
        return out


@final
@attrs.frozen
class WorkerOptions:
    """How a worker pulls and runs jobs.

    Attributes:
        concurrency: most jobs handled at once. A slot is free once its handler returns,
            while the ack is on its way.
        prefetch: how many jobs the worker may hold beyond `concurrency`, pulled but not
            handed to a handler yet, so that a handler that returns finds its next job
            without a round trip. None: adaptive, starting at 4 x `concurrency` like
            Celery's default prefetch multiplier, doubling while handlers finish every
            prefetched job before the next pull is back (up to 2 x `batch_size`) and
            halving back when jobs wait; a number: exactly that; 0: pull only for free
            slots. Counting the jobs whose ack is on its
            way, the worker holds at most 2 x (`concurrency` + `prefetch`) jobs; the ones
            not started yet are handed back to the queue when it stops.
        batch_size: most jobs per PULLB. Pulls are no bigger than the room in the window,
            so they reach this size only once the adaptive prefetch has grown for handlers
            that finish faster than a round trip.
        pull_timeout_ms: how long one PULLB may wait on the server for a job.
        shutdown_timeout_s: on stop, how long jobs in flight may take to finish.
        heartbeat_interval_s: beat this often for each job; None: a third of the job's
            `stall_timeout` (10 s for the default 30 s window).
        sync_in_thread: run sync handlers in threads (False: call them in the event loop,
            for trivial handlers where a thread hop would dominate).
        processes: run the (sync, picklable) handler in a pool of this many processes,
            the "sandboxed processor" for CPU-bound work; it receives an unbound Job.
        ack_batch: acknowledge result-less jobs with ACKB batches instead of one ACK each.
    """

    concurrency: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    prefetch: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )
    batch_size: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    pull_timeout_ms: int = 1000
    shutdown_timeout_s: float = 30.0
    heartbeat_interval_s: float | None = None
    sync_in_thread: bool = True
    processes: int | None = None
    ack_batch: bool = True

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> WorkerOptions:
        """Options from a dict of our field names or the upstream SDK's (`close_timeout` ms,
        `stall_timeout` ms ...). Unknown keys raise ValueError, naming the key.

        Upstream's `auto_start` is accepted and ignored: a worker here starts when served.
        """
        ours = attrs.fields_dict(cls)
        kwargs: dict[str, Any] = {}
        for key, value in options.items():
            if key in ours:
                kwargs[key] = value
            elif key == "close_timeout":
                kwargs["shutdown_timeout_s"] = value / 1000
            elif key == "stall_timeout":
                kwargs["heartbeat_interval_s"] = value / 3000
            elif key not in ("auto_start", "log_level"):
                raise ValueError(f"unknown worker option {key!r}")
        return cls(**kwargs)


class WorkerOpts(TypedDict, total=False):
    concurrency: int
    prefetch: int | None
    batch_size: int
    pull_timeout_ms: int
    shutdown_timeout_s: float
    heartbeat_interval_s: float | None
    sync_in_thread: bool
    processes: int | None
    ack_batch: bool
