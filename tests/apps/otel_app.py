"""The application ``sqlq consume tests.apps.otel_app.queue`` loads in the tracing tests with
process workers (tests/tracing/test_processes.py); its configuration: ``tests/_harness.py``.

Its queue traces with a tracer provider of its own (not the global one: the test process
builds this app too) whose spans every process appends, one JSON object a line, to the file
``SQLQ_TEST_SPANS`` names, synchronously as each span ends: the test reads the producer's
span (written by the test process) and the consumer's (written by a worker process) there.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from tests._harness import open_queue, queue_from_env, record

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue

QUEUE_NAME = 'otel'
SPANS_ENV = 'SQLQ_TEST_SPANS'


def span_record(span: Any) -> Dict[str, Any]:
    """What the file keeps of one finished span."""
    parent = span.parent
    return {'name': span.name, 'kind': span.kind.name, 'pid': os.getpid(),
            'trace_id': '%032x' % span.context.trace_id,
            'span_id': '%016x' % span.context.span_id,
            'parent_id': None if parent is None else '%016x' % parent.span_id,
            'status': span.status.status_code.name,
            'events': [event.name for event in span.events],
            'attributes': dict(span.attributes or {})}


def read_spans(path: str) -> List[Dict[str, Any]]:
    """The spans written so far (complete lines only)."""
    try:
        with open(path, 'rb') as fh:
            lines = fh.read().split(b'\n')[:-1]
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines]


def _provider(path: str) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class FileExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            data = b''.join(json.dumps(span_record(s)).encode() + b'\n' for s in spans)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)  # one O_APPEND write: lines of processes never interleave
            finally:
                os.close(fd)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    return provider


def build(path: str, clock: Optional[Callable[[], float]] = None,
          redis_url: Optional[str] = None) -> 'Queue':
    """A traced queue on ``path`` (or the Redis server ``redis_url``) with the test tasks."""
    spans = os.environ.get(SPANS_ENV) or os.path.join(os.path.dirname(path) or '.',
                                                       'spans.jsonl')
    q = open_queue(QUEUE_NAME, path, clock, redis_url, tracing=_provider(spans))

    @q.task(name='otel.add')
    def add(a: int, b: int) -> int:
        record('add', a, b)
        return a + b

    @q.task(name='otel.fail', retries=1)
    def fail() -> None:
        record('fail')
        raise ValueError('boom')

    q.app = add, fail  # type: ignore[attr-defined]
    return q


queue = queue_from_env(build)
