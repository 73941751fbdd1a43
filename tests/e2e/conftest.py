"""Connections to the module's server (each conformance module starts its own `srv`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_conformance import Wire
from tests.harness import ServerProcess


@pytest.fixture
def wire(srv: ServerProcess) -> Iterator[Wire]:
    w = Wire(srv.connect())
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def other(srv: ServerProcess) -> Iterator[Wire]:
    """A second connection, for acting while `wire` is blocked."""
    w = Wire(srv.connect())
    try:
        yield w
    finally:
        w.close()
