from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import ServerProcess


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for a whole test module (tests use their own queue names)."""
    srv = ServerProcess(tmp_path_factory.mktemp("data"), shard_procs=2).start()
    try:
        yield srv
    finally:
        srv.stop()
