"""Fixtures of the tracing tests: an SDK tracer provider of the test's own (never the global
one, which can be set once per process) exporting to memory, and queues tracing with it.
The tests skip where the OpenTelemetry SDK is not installed (the ``test`` extra installs it)."""
from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

pytest.importorskip('opentelemetry.sdk.trace',
                    reason="opentelemetry-sdk is not installed (pip install -e '.[test]')")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)


class Spans:
    """The spans a test's provider recorded, finished ones only."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def all(self) -> List[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> List[ReadableSpan]:
        return [span for span in self.all() if span.name.startswith(prefix)]

    def one(self, prefix: str) -> ReadableSpan:
        found = self.named(prefix)
        assert len(found) == 1, [span.name for span in self.all()]
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorded = Spans()
    yield recorded
    recorded.provider.shutdown()


@pytest.fixture
def traced(make_queue: Callable[..., Any], spans: Spans) -> Any:
    """A queue on the current backend whose enqueues and runs are traced into ``spans``."""
    return make_queue(tracing=spans.provider)


@pytest.fixture
def consumers() -> Iterator[List[Any]]:
    """Consumers created by a test; stopped (at once) at its end whatever happened."""
    made: List[Any] = []
    yield made
    for consumer in made:
        consumer.stop(graceful=False, timeout=0)
