"""`BlockingClient`: the client for scripts, WSGI apps and threads, with the async API's names.

Each method is the async client's method, driven to completion synchronously (see
`_sync.drive`): the command building and reply parsing are the same code, only the I/O
differs. Safe to share between threads: each call checks a connection out of a small
pool (`pool_size`, default 1) and returns it afterwards.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar, Unpack, final

from flashq.client._api import Api
from flashq.client._blocking import BlockingConnection
from flashq.client._errors import ClientClosedError
from flashq.client._runtime import backoff_delays
from flashq.client._session import Reply
from flashq.client._sync import drive
from flashq.client.options import ClientOptions, ConnectionOpts
from flashq.client.pipeline import Pipeline
from flashq.errors import AuthenticationError, TimeoutError_, UnavailableError

__all__ = ["BlockingClient"]

P = ParamSpec("P")
R = TypeVar("R")


@final
class _Core(Api):
    """The method surface over blocking I/O; its coroutines never suspend."""

    sync_driven: ClassVar[bool] = True

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._idle: queue.LifoQueue[BlockingConnection | None] = queue.LifoQueue()
        for _ in range(options.pool_size):
            self._idle.put(None)
        self._all: set[BlockingConnection] = set()
        self._lock = threading.Lock()
        self.closed = False

    def _checkout(self) -> BlockingConnection:
        conn = self._idle.get()
        if self.closed:
            self._idle.put(conn)
            raise ClientClosedError("the client is closed")
        if conn is not None:
            if conn.usable():
                return conn
            with self._lock:
                self._all.discard(conn)
        try:
            return self._connect(retry=self.options.reconnect)
        except BaseException:
            self._idle.put(None)
            raise

    def _connect(self, *, retry: bool) -> BlockingConnection:
        opts = self.options
        deadline = time.monotonic() + opts.reconnect_timeout_s
        delays = backoff_delays(opts.reconnect_delay_s, opts.reconnect_max_delay_s)
        while True:
            try:
                conn = BlockingConnection(opts)
            except AuthenticationError:
                raise
            except (UnavailableError, TimeoutError_):
                remaining = deadline - time.monotonic()
                if not retry or remaining <= 0:
                    raise
                time.sleep(min(next(delays), remaining))
                continue
            with self._lock:
                self._all.add(conn)
            return conn

    def connect_now(self) -> None:
        """Open one connection with a single attempt (fail fast in the constructor)."""
        conn = self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = self._connect(retry=False)
        except BaseException:
            self._idle.put(None)
            raise
        self._idle.put(conn)

    def _checkin(self, conn: BlockingConnection) -> None:
        if conn.closed:
            with self._lock:
                self._all.discard(conn)
        self._idle.put(conn)

    def _timeout(self, wait_ms: int | None) -> float | None:
        base = self.options.request_timeout_s
        if base is None:
            return None
        return base + wait_ms / 1000 if wait_ms else base

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        conn = self._checkout()
        try:
            return conn.request(fields, self._timeout(wait_ms))
        finally:
            self._checkin(conn)

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        conn = self._checkout()
        try:
            return conn.request_many(requests, self._timeout(wait_ms))
        finally:
            self._checkin(conn)

    def close(self) -> None:
        self.closed = True
        with self._lock:
            conns, self._all = list(self._all), set()
        for conn in conns:
            conn.close()


def _blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[BlockingClient, P], R]:
    """The blocking twin of an async `Api` method (same signature and docstring)."""

    @functools.wraps(method)
    def call(self: BlockingClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return drive(method(self._core, *args, **kwargs))

    return call


@final
class BlockingClient:
    """Blocking flashQ client; every method of `FlashQ`, same names, same results.

    Args:
        host: server address, or a `ClientOptions` / options dict.
        port: server port.
        token: AUTH token.
        timeout_s: request and connect timeout (shorthand for both options).
        **kwargs: any other `ClientOptions` field.

    Connects in the constructor (one attempt: raises `ConnectError`, an `OSError`, if the
    server is unreachable). A dropped connection is reopened by the next call, with
    backoff; a call in flight when it drops raises `ConnectionClosedError`.
    """

    def __init__(
        self,
        host: str | ClientOptions | Mapping[str, Any] | None = None,
        port: int | None = None,
        *,
        token: str | None = None,
        timeout_s: float | None = None,
        **kwargs: Unpack[ConnectionOpts],
    ) -> None:
        over: dict[str, Any] = dict(kwargs)
        if isinstance(host, str):
            over["host"] = host
            host = None
        if port is not None:
            over["port"] = port
        if token is not None:
            over["token"] = token
        if timeout_s is not None:
            over.setdefault("request_timeout_s", timeout_s)
            over.setdefault("connect_timeout_s", timeout_s)
        self.options = ClientOptions.coerce(host, **over)
        self._core = _Core(self.options)
        self._core.connect_now()

    def close(self) -> None:
        """Close every connection; later calls raise `ClientClosedError`."""
        self._core.close()

    def pipeline(self) -> Pipeline:
        """Calls to batch into one write: `pipe.run(pipe.push(q, d) for d in items)`."""
        return Pipeline(self._core)

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    call = _blocking(Api.call)
    # core
    push = _blocking(Api.push)
    push_batch = _blocking(Api.push_batch)
    push_flow = _blocking(Api.push_flow)
    pull = _blocking(Api.pull)
    pull_batch = _blocking(Api.pull_batch)
    ack = _blocking(Api.ack)
    ack_batch = _blocking(Api.ack_batch)
    fail = _blocking(Api.fail)
    # queries
    get_job = _blocking(Api.get_job)
    get_state = _blocking(Api.get_state)
    get_result = _blocking(Api.get_result)
    get_job_by_custom_id = _blocking(Api.get_job_by_custom_id)
    get_jobs = _blocking(Api.get_jobs)
    get_jobs_batch = _blocking(Api.get_jobs_batch)
    get_job_counts = _blocking(Api.get_job_counts)
    count = _blocking(Api.count)
    finished = _blocking(Api.finished)
    # job management
    cancel = _blocking(Api.cancel)
    progress = _blocking(Api.progress)
    get_progress = _blocking(Api.get_progress)
    update = _blocking(Api.update)
    change_priority = _blocking(Api.change_priority)
    move_to_delayed = _blocking(Api.move_to_delayed)
    promote = _blocking(Api.promote)
    discard = _blocking(Api.discard)
    heartbeat = _blocking(Api.heartbeat)
    partial = _blocking(Api.partial)
    log = _blocking(Api.log)
    get_logs = _blocking(Api.get_logs)
    # queue control
    pause = _blocking(Api.pause)
    resume = _blocking(Api.resume)
    is_paused = _blocking(Api.is_paused)
    drain = _blocking(Api.drain)
    obliterate = _blocking(Api.obliterate)
    clean = _blocking(Api.clean)
    list_queues = _blocking(Api.list_queues)
    set_rate_limit = _blocking(Api.set_rate_limit)
    clear_rate_limit = _blocking(Api.clear_rate_limit)
    set_concurrency = _blocking(Api.set_concurrency)
    clear_concurrency = _blocking(Api.clear_concurrency)
    # dead-letter queue
    get_dlq = _blocking(Api.get_dlq)
    retry_dlq = _blocking(Api.retry_dlq)
    purge_dlq = _blocking(Api.purge_dlq)
    # cron
    add_cron = _blocking(Api.add_cron)
    delete_cron = _blocking(Api.delete_cron)
    list_crons = _blocking(Api.list_crons)
    # monitoring
    stats = _blocking(Api.stats)
    metrics = _blocking(Api.metrics)
    ping = _blocking(Api.ping)
    # key/value
    kv_set = _blocking(Api.kv_set)
    kv_get = _blocking(Api.kv_get)
    kv_del = _blocking(Api.kv_del)
    kv_mget = _blocking(Api.kv_mget)
    kv_mset = _blocking(Api.kv_mset)
    kv_exists = _blocking(Api.kv_exists)
    kv_expire = _blocking(Api.kv_expire)
    kv_ttl = _blocking(Api.kv_ttl)
    kv_keys = _blocking(Api.kv_keys)
    kv_incr = _blocking(Api.kv_incr)
