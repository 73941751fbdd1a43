"""flashQ: a job-queue server on Trio speaking the flashQ wire protocol, and its Python SDK.

The names below are the SDK (`flashq.client`), re-exported so `from flashq import FlashQ,
Worker, Queue` works as with the upstream SDK; the errors are shared with the server.
They load lazily (PEP 562): the server's processes import `flashq.protocol` and must not
pull in the SDK's sockets and threads just because `flashq` is their parent package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flashq.errors import AuthenticationError as AuthenticationError
from flashq.errors import ConflictError as ConflictError
from flashq.errors import ConnectionClosedError as ConnectionClosedError
from flashq.errors import FlashQError as FlashQError
from flashq.errors import NotFoundError as NotFoundError
from flashq.errors import ProtocolError as ProtocolError
from flashq.errors import ServerError as ServerError
from flashq.errors import TimeoutError_ as TimeoutError_
from flashq.errors import UnavailableError as UnavailableError
from flashq.errors import ValidationError as ValidationError

if TYPE_CHECKING:
    from flashq.client import AsyncClient as AsyncClient
    from flashq.client import BlockingClient as BlockingClient
    from flashq.client import Client as Client
    from flashq.client import ClientClosedError as ClientClosedError
    from flashq.client import ClientOptions as ClientOptions
    from flashq.client import ConnectError as ConnectError
    from flashq.client import CronJob as CronJob
    from flashq.client import FlashQ as FlashQ
    from flashq.client import FlowChild as FlowChild
    from flashq.client import FlowResult as FlowResult
    from flashq.client import Job as Job
    from flashq.client import JobCounts as JobCounts
    from flashq.client import JobState as JobState
    from flashq.client import LogEntry as LogEntry
    from flashq.client import Metrics as Metrics
    from flashq.client import Pipeline as Pipeline
    from flashq.client import Progress as Progress
    from flashq.client import PushOptions as PushOptions
    from flashq.client import Queue as Queue
    from flashq.client import QueueInfo as QueueInfo
    from flashq.client import QueueMetrics as QueueMetrics
    from flashq.client import QueueStats as QueueStats
    from flashq.client import Retry as Retry
    from flashq.client import Stats as Stats
    from flashq.client import Worker as Worker
    from flashq.client import WorkerOptions as WorkerOptions

__version__ = "0.1.0"

_CLIENT_NAMES = frozenset(
    {
        "AsyncClient",
        "BlockingClient",
        "Client",
        "ClientClosedError",
        "ClientOptions",
        "ConnectError",
        "CronJob",
        "FlashQ",
        "FlowChild",
        "FlowResult",
        "Job",
        "JobCounts",
        "JobState",
        "LogEntry",
        "Metrics",
        "Pipeline",
        "Progress",
        "PushOptions",
        "Queue",
        "QueueInfo",
        "QueueMetrics",
        "QueueStats",
        "Retry",
        "Stats",
        "Worker",
        "WorkerOptions",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        return getattr(importlib.import_module("flashq.client"), name)
    raise AttributeError(f"module 'flashq' has no attribute {name!r}")
