"""Layering rules of the SDK, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_sdk_loads_no_runtime_no_server_and_no_shards():
    # `flashq` re-exports the SDK lazily; touching a name loads it.
    assert "flashq.client" not in _modules_after("import flashq")
    loaded = _modules_after("import flashq; flashq.BlockingClient")
    assert "flashq.client" in loaded
    # The runtime is picked when a client connects; the blocking client needs neither.
    for forbidden in ("trio", "asyncio", "flashq.server", "shards", "ssl", "multiprocessing"):
        assert forbidden not in loaded, forbidden


def test_the_sdk_reexports_its_names_from_flashq():
    import flashq
    import flashq.client

    for name in ("FlashQ", "BlockingClient", "Worker", "Queue", "Job", "JobState", "Retry"):
        assert getattr(flashq, name) is getattr(flashq.client, name)
