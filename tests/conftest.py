from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import ServerProcess

settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server: supervisor, acceptor, coordinator and 2 shard processes, memory storage."""
    srv = ServerProcess(tmp_path / "data", shard_procs=2).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def durable_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Like `server`, on the default embedded storage."""
    srv = ServerProcess(tmp_path / "data", shard_procs=2, storage="embedded").start()
    try:
        yield srv
    finally:
        srv.stop()
