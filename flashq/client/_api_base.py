"""The seam under the method surface: two request primitives every client implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flashq.client._session import Reply
from flashq.client.job import Job
from flashq.errors import FlashQError

__all__ = ["ApiBase", "count_of", "raise_first_error"]


class ApiBase:
    """Commands are built and replies parsed once, in the mixins over this class.

    Subclasses provide the I/O: `_request` sends one command and returns its reply body
    (raising the FlashQError it maps to); `_request_many` pipelines several commands and
    returns each reply or error in order. `wait_ms` is how long the server may hold the
    request (PULL, WAITJOB): the client's own timeout is extended by it.
    """

    sync_driven: ClassVar[bool] = False
    """True when `_request` never suspends, so the coroutines can be driven synchronously."""

    async def _request(self, fields: dict[str, Any], wait_ms: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    async def _request_many(
        self, requests: list[dict[str, Any]], wait_ms: int | None = None
    ) -> list[Reply]:
        raise NotImplementedError

    def _job_api(self) -> Any:
        """What returned jobs are bound to (the client itself unless a subclass says)."""
        return self

    def _job(self, obj: Mapping[str, Any], state: Any = None) -> Job:
        return Job.from_wire(obj, state, self._job_api())

    def _jobs(self, objs: Any) -> list[Job]:
        api = self._job_api()
        return [Job.from_wire(o, None, api) for o in objs or ()]

    async def call(self, cmd: str, /, **fields: Any) -> dict[str, Any]:
        """Send any command (PROTOCOL.md §2) and return the raw reply body.

        Raises:
            the FlashQError subclass the server's error text maps to.
        """
        fields["cmd"] = cmd
        return await self._request(fields)

    async def _ok(self, fields: dict[str, Any]) -> None:
        await self._request(fields)


def raise_first_error(replies: list[Reply]) -> list[dict[str, Any]]:
    """The replies of a pipelined batch, or the first error among them raised."""
    for reply in replies:
        if isinstance(reply, FlashQError):
            raise reply
    return replies  # type: ignore[return-value]


def count_of(reply: Mapping[str, Any]) -> int:
    """ACKB / RETRYDLQ count: `count` (★ additive), else upstream's `ids: [n]`."""
    count = reply.get("count")
    if count is not None:
        return int(count)
    ids = reply.get("ids") or [0]
    return int(ids[0])
