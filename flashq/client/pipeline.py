"""`Pipeline`: many calls sent in one write and awaited once, without a task per call.

Issuing many calls concurrently already pipelines them on the connection, but each needs
its own task, and under load the task switches cost more than the server's work (the
pipelined-push benchmark: ~14 µs of client CPU per push). A pipeline takes the coroutines of
ordinary method calls, runs each up to the request it would send, sends them all with
`_request_many`, and resumes each with its reply: the same command building and reply
parsing as the client's own methods, one wake-up per round. `push`, the call pipelined
most, skips even the coroutine: it is a `_Call`, one light object while in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from typing import Any, Literal, TypeVar, Unpack, final, overload

from flashq.client._api import Api
from flashq.client._api_base import ApiBase
from flashq.client._api_jobs import push_fields, pushed_id
from flashq.client._session import Reply
from flashq.client._sync import drive
from flashq.client.options import PushOptions, PushOpts
from flashq.errors import FlashQError

__all__ = ["Pipeline"]

T = TypeVar("T")


class _Requested:
    """What a call under a pipeline yields instead of doing I/O: the commands it sends
    (`requests`: one command dict, or a list of them when `many`)."""

    __slots__ = ("many", "requests", "wait_ms")

    def __init__(self, requests: Any, many: bool, wait_ms: int | None) -> None:
        self.requests = requests
        self.many = many
        self.wait_ms = wait_ms

    def __await__(self) -> Generator[_Requested, Reply | list[Reply], Any]:
        reply = yield self
        if isinstance(reply, FlashQError):
            raise reply
        return reply


@final
class _Call(_Requested, Coroutine[_Requested, Reply, T]):
    """A call that is one command and a function of its reply, as a hand-made coroutine.

    It behaves as the `async def` it stands for (first `send` yields its request, the
    second returns `finish(reply)`), but `execute` runs it without resuming a frame, and
    in flight it is one object where an `async def` call is a chain of four (method
    coroutine, `_request`, `_Requested`, its generator). The cyclic GC traverses what is in
    flight again and again: it was ~30% of the client's CPU in the pipelined-push
    benchmark, 1,000 pushes in flight.
    """

    __slots__ = ("finish", "sent")

    def __init__(self, fields: dict[str, Any], finish: Callable[[dict[str, Any]], T]) -> None:
        super().__init__(fields, False, None)
        self.finish = finish
        self.sent = False

    def outcome(self, reply: Reply) -> T | FlashQError:
        return reply if isinstance(reply, FlashQError) else self.finish(reply)

    def send(self, reply: Reply | None) -> _Requested:
        if not self.sent:
            self.sent = True
            return self
        if isinstance(reply, FlashQError):
            raise reply
        raise StopIteration(self.finish(reply))  # type: ignore[arg-type]

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> _Requested:
        raise typ if val is None else val

    def close(self) -> None:
        self.sent = True

    def __await__(self) -> Generator[_Requested, Reply | list[Reply], T]:
        reply = yield self
        result = self.outcome(reply)  # type: ignore[arg-type]
        if isinstance(result, FlashQError):
            raise result
        return result


@final
class Pipeline(Api):
    """Every client method, batched: build calls with it, then `execute` them together.

    ```python
    pipe = client.pipeline()
    ids = await pipe.execute(pipe.push("emails", {"to": a}) for a in addresses)
    ```

    A `BlockingClient`'s pipeline runs them with `run` instead, without an event loop.

    The calls are not awaited one by one: `execute` starts them all, sends their commands
    in one write on one connection, and returns their results in order. A call that
    makes several requests in sequence (none of the core commands do) takes one round per
    request, all calls' rounds together. The server answers a pipeline's commands in
    order, as if sent one by one, so later calls see the effects of earlier ones.
    """

    def __init__(self, client: ApiBase) -> None:
        self._client = client

    def _job_api(self) -> Any:
        return self._client._job_api()

    def push(
        self,
        queue: str,
        data: Any,
        options: PushOptions | Mapping[str, Any] | None = None,
        **opts: Unpack[PushOpts],
    ) -> Coroutine[Any, Any, int]:
        """`push`, as a `_Call`: the most pipelined command, kept light in flight."""
        return _Call(push_fields(queue, data, options, opts), pushed_id)

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = await _Requested(fields, False, wait_ms)
        return reply

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        replies: list[Reply] = await _Requested(requests, True, wait_ms)
        return replies

    @overload
    async def execute(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: Literal[False] = ...
    ) -> list[T]: ...

    @overload
    async def execute(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: bool
    ) -> list[T | FlashQError]: ...

    async def execute(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: bool = False
    ) -> list[T] | list[T | FlashQError]:
        """Run `calls` (coroutines of this pipeline's methods) together; their results in order.

        Raises:
            the first call's FlashQError, unless `return_exceptions`, which puts each
            error in its call's place instead (the other calls still ran).
            TypeError: a call is not a coroutine of this pipeline's methods.
        """
        results: list[Any] = []
        waiting: list[tuple[int, Coroutine[Any, Any, T], _Requested]] = []
        try:
            for coro in calls:
                results.append(None)
                self._advance(coro, None, len(results) - 1, results, waiting)
            while waiting:
                requests: list[dict[str, Any]] = []
                wait_ms: int | None = None
                for _, _, asked in waiting:
                    if asked.many:
                        requests.extend(asked.requests)
                    else:
                        requests.append(asked.requests)
                    if asked.wait_ms is not None:
                        wait_ms = max(wait_ms or 0, asked.wait_ms)
                replies = await self._client._request_many(requests, wait_ms)
                round_, waiting = waiting, []
                start = 0
                for index, coro, asked in round_:
                    if asked.many:
                        end = start + len(asked.requests)
                        reply: Reply | list[Reply] = replies[start:end]
                        start = end
                    else:
                        reply = replies[start]
                        start += 1
                    self._advance(coro, reply, index, results, waiting)
        finally:
            for _, coro, _ in waiting:  # the round failed (connection lost, cancelled)
                coro.close()
        if not return_exceptions:
            for result in results:
                if isinstance(result, FlashQError):
                    raise result
        return results

    @overload
    def run(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: Literal[False] = ...
    ) -> list[T]: ...

    @overload
    def run(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: bool
    ) -> list[T | FlashQError]: ...

    def run(
        self, calls: Iterable[Coroutine[Any, Any, T]], *, return_exceptions: bool = False
    ) -> list[T] | list[T | FlashQError]:
        """`execute` for a pipeline of a `BlockingClient`: runs the calls to the end, here.

        Raises:
            TypeError: the pipeline belongs to an async client (await `execute` instead).
        """
        if not self._client.sync_driven:
            raise TypeError("Pipeline.run is for a BlockingClient's pipeline; await execute()")
        return drive(self.execute(calls, return_exceptions=return_exceptions))

    @staticmethod
    def _advance(
        coro: Coroutine[Any, Any, Any],
        reply: Reply | list[Reply] | None,
        index: int,
        results: list[Any],
        waiting: list[tuple[int, Coroutine[Any, Any, Any], _Requested]],
    ) -> None:
        """Resume `coro` with `reply`: it finishes (result stored) or asks for more."""
        if type(coro) is _Call:
            if coro.sent:
                results[index] = coro.outcome(reply)  # type: ignore[arg-type]
            else:
                coro.sent = True
                waiting.append((index, coro, coro))
            return
        try:
            asked = coro.send(reply)
        except StopIteration as stop:
            results[index] = stop.value
            return
        except FlashQError as exc:
            results[index] = exc
            return
        if not isinstance(asked, _Requested):
            coro.close()
            raise TypeError(
                "Pipeline.execute takes calls of the pipeline's own methods "
                f"(pipe.push(...)), not coroutines that await other things ({asked!r})"
            )
        waiting.append((index, coro, asked))
