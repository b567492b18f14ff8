"""Fixtures of the consumer and worker tests."""
from __future__ import annotations

import pytest

from sqlq import worker as worker_module


@pytest.fixture
def recording_job(queue, monkeypatch):
    """``(job, ran)``: a task recording each argument it runs with, on a worker retrying
    storage errors after 10 ms."""
    monkeypatch.setattr(worker_module, 'RETRY_FIRST_DELAY', 0.01)
    ran = []

    @queue.task()
    def job(i):
        ran.append(i)
        return i

    return job, ran


@pytest.fixture
def consumers():
    """Consumers created by a test; stopped (at once) at its end whatever happened."""
    made = []
    yield made
    for consumer in made:
        consumer.stop(graceful=False, timeout=0)
