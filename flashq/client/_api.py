"""The whole method surface, written once: async clients await it, the blocking client drives it."""

from __future__ import annotations

from flashq.client._api_admin import AdminApi
from flashq.client._api_jobs import JobsApi

__all__ = ["Api"]


class Api(JobsApi, AdminApi):
    """Every command of PROTOCOL.md as a method; subclasses supply `_request`."""
