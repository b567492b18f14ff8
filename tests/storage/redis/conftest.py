"""Fixtures of the Redis-only tests: the backend is 'redis'."""
from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    return 'redis'
