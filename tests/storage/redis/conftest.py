"""Fixtures of the Redis-only tests: the backend is 'redis'."""
from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    return 'redis'


@pytest.fixture(params=['fast', 'public'])
def transport(request, monkeypatch):
    """The transport of the storages a test makes: the fast one (on redis-py private
    attributes), or the public-API one that a redis-py without those attributes gets."""
    if request.param == 'public':
        from sqlq.storage.redis import _resp
        monkeypatch.setattr(_resp, 'fast_path_supported', lambda conn: False)
    return request.param


@pytest.fixture
def pair(redis_url):
    """Two storages of one queue (two processes, as far as Redis can tell)."""
    from sqlq.storage.redis import RedisStorage
    made = (RedisStorage('tx', url=redis_url), RedisStorage('tx', url=redis_url))
    yield made
    for storage in made:
        storage.close()
