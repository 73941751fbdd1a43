"""`Pipeline`: many calls sent in one write and awaited once, without a task per call.

Issuing many calls concurrently already pipelines them on the connection, but each needs
its own task, and under load the task switches cost more than the server's work (the
pipelined-push benchmark: ~14 µs of client CPU per push). A pipeline takes the coroutines of
ordinary method calls, runs each up to the request it would send, sends them all with
`_request_many`, and resumes each with its reply: the same command building and reply
parsing as the client's own methods, one wake-up per round.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator, Iterable
from typing import Any, Literal, TypeVar, final, overload

from flashq.client._api import Api
from flashq.client._api_base import ApiBase
from flashq.client._session import Reply
from flashq.client._sync import drive
from flashq.errors import FlashQError

__all__ = ["Pipeline"]

T = TypeVar("T")


@final
class _Requested:
    """What a call under a pipeline yields instead of doing I/O: the commands it sends."""

    __slots__ = ("many", "requests", "wait_ms")

    def __init__(self, requests: list[dict[str, Any]], many: bool, wait_ms: int | None) -> None:
        self.requests = requests
        self.many = many
        self.wait_ms = wait_ms

    def __await__(self) -> Generator[_Requested, Reply | list[Reply], Any]:
        reply = yield self
        if isinstance(reply, FlashQError):
            raise reply
        return reply


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

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        reply: dict[str, Any] = await _Requested([fields], False, wait_ms)
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
                    requests.extend(asked.requests)
                    if asked.wait_ms is not None:
                        wait_ms = max(wait_ms or 0, asked.wait_ms)
                replies = await self._client._request_many(requests, wait_ms)
                round_, waiting = waiting, []
                start = 0
                for index, coro, asked in round_:
                    end = start + len(asked.requests)
                    reply = replies[start:end] if asked.many else replies[start]
                    start = end
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
