"""Fixtures for the storage tests: every backend behind one factory, plus a child-process helper."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shards.storage import EmbeddedStorage, MemoryStorage, Storage

REPO_ROOT = Path(__file__).resolve().parents[2]


class Backend:
    """One backend under test. `reopen()` simulates a restart: a closed embedded store is
    opened again on the same directory; memory keeps its object (it has no restart)."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.instances: list[Storage] = []
        self.current = self._make()

    def _make(self) -> Storage:
        storage: Storage
        if self.kind == "memory":
            storage = MemoryStorage()
        else:
            storage = EmbeddedStorage(str(self.tmp_path / "data"), background_compaction=False)
        self.instances.append(storage)
        return storage

    def reopen(self) -> Storage:
        if self.kind == "memory":
            return self.current
        self.current.close()
        self.current = self._make()
        return self.current

    def close_all(self) -> None:
        for storage in self.instances:
            storage.close()


@pytest.fixture(params=["memory", "embedded"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    made.close_all()


def run_child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with the repository importable."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
