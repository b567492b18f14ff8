"""Tracing across processes: a task enqueued (and traced) by this process, run by a real
``sqlq consume -k process`` consumer (its worker processes trace with the app's provider),
on SQLite and on Redis. Every process appends its finished spans to one file
(tests/apps/otel_app.py); every wait is bounded."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import pytest

from tests._helpers import wait_for
from tests.apps import otel_app

pytestmark = pytest.mark.slow

WAIT = 30.0  # seconds: the bound of every wait here


def _spans(app: Any) -> List[Dict[str, Any]]:
    return otel_app.read_spans(os.path.join(app.dir, 'spans.jsonl'))


def _named(app: Any, prefix: str) -> List[Dict[str, Any]]:
    return [span for span in _spans(app) if span['name'].startswith(prefix)]


@pytest.fixture(params=['sqlite', 'redis'])
def app(request: pytest.FixtureRequest, start_harness: Any) -> Any:
    url = request.getfixturevalue('redis_url') if request.param == 'redis' else None
    return start_harness(otel_app, redis_url=url)


@pytest.mark.parametrize('start_method', ['fork', 'spawn'])
def test_process_worker_span_is_a_child_of_the_producer_span(app, start_method):
    # spawn: the workers import the app again, and with it its tracing configuration
    consumer = app.start('-k', 'process', '-w', '2', '--start-method', start_method)
    add, fail = app.queue.app
    result = add(2, 3)
    assert result.get(blocking=True, timeout=WAIT) == 5
    fail()
    wait_for(lambda: len(_named(app, 'execute ')) >= 3, WAIT, 'three execution spans',
             consumer.describe)

    [producer] = _named(app, 'enqueue otel.add')
    [execution] = _named(app, 'execute otel.add')
    assert producer['pid'] == os.getpid() and producer['kind'] == 'PRODUCER'
    assert execution['pid'] in consumer.worker_pids() and execution['kind'] == 'CONSUMER'
    assert execution['trace_id'] == producer['trace_id']
    assert execution['parent_id'] == producer['span_id']
    assert execution['attributes']['messaging.message.id'] == result.id
    assert execution['attributes']['messaging.destination.name'] == 'otel'

    [enqueue_fail] = _named(app, 'enqueue otel.fail')
    attempts = _named(app, 'execute otel.fail')
    assert len(attempts) == 2  # retries=1: two attempts, two spans
    for span in attempts:
        assert span['parent_id'] == enqueue_fail['span_id']
        assert span['trace_id'] == enqueue_fail['trace_id']
        assert span['status'] == 'ERROR' and 'exception' in span['events']
    assert sorted(s['attributes']['sqlq.task.outcome'] for s in attempts) == ['failed',
                                                                              'retry']
