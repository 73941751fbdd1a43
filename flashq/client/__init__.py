"""The flashQ Python SDK: async client (Trio or asyncio), blocking client, Worker, Queue.

Layers, bottom up: `_session` (sans-IO request/reply matching over `flashq.protocol`),
`_trio` / `_asyncio` / `_blocking` (one transport per runtime), `_pool` (reconnects),
`_api*` (every command, written once), then `FlashQ`, `BlockingClient`, `Worker`, `Queue`.
"""

from __future__ import annotations

from flashq.client._errors import ClientClosedError as ClientClosedError
from flashq.client._errors import ConnectError as ConnectError
from flashq.client._errors import Retry as Retry
from flashq.client.blocking import BlockingClient as BlockingClient
from flashq.client.client import AsyncClient as AsyncClient
from flashq.client.client import Client as Client
from flashq.client.client import FlashQ as FlashQ
from flashq.client.job import Job as Job
from flashq.client.job import JobState as JobState
from flashq.client.models import CronJob as CronJob
from flashq.client.models import FlowResult as FlowResult
from flashq.client.models import JobCounts as JobCounts
from flashq.client.models import LogEntry as LogEntry
from flashq.client.models import Metrics as Metrics
from flashq.client.models import Progress as Progress
from flashq.client.models import QueueInfo as QueueInfo
from flashq.client.models import QueueMetrics as QueueMetrics
from flashq.client.models import QueueStats as QueueStats
from flashq.client.models import Stats as Stats
from flashq.client.options import ClientOptions as ClientOptions
from flashq.client.options import FlowChild as FlowChild
from flashq.client.options import PushOptions as PushOptions
from flashq.client.options import WorkerOptions as WorkerOptions
from flashq.client.pipeline import Pipeline as Pipeline
from flashq.client.queue import Queue as Queue
from flashq.client.worker import Worker as Worker
