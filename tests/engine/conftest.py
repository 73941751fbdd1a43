"""Fixtures of the engine tests. Hypothesis profiles ("dev" default, "ci" via the
HYPOTHESIS_PROFILE variable) are registered once for the whole suite in tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.engine.helpers import Harness


@pytest.fixture
def h() -> Harness:
    """A shard-0 engine at T0 with default config."""
    return Harness()
