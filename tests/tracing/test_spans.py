"""OpenTelemetry tracing (``Queue(tracing=...)``, sqlq/tracing.py): the producer span of an
enqueue, the consumer span of each execution attempt, and the trace context the message
carries between them, on every backend; runs here are in this process (``dequeue`` and
``execute``, or an embedded thread consumer), waits bounded."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from sqlq import ConfigurationError, MemoryQueue, _wire
from sqlq.tracing import decode_carrier, encode_carrier, instrument, uninstrument
from tests._helpers import wait_for

WAIT = 10.0  # seconds: the bound of every wait here


def drain(queue: Any) -> int:
    """Run every ready task in this process; how many ran."""
    ran = 0
    while True:
        task = queue.dequeue()
        if task is None:
            return ran
        queue.execute(task)
        ran += 1


def assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def stored_flags(queue: Any) -> int:
    """The wire flags of the one message waiting in the queue."""
    [data] = queue.storage.enqueued_items()
    raw = queue.serializer.unseal(data)
    return raw[2] | raw[3] << 8


@pytest.mark.both_fastpaths
def test_execution_span_is_a_child_of_the_enqueue_span(traced, spans):
    @traced.task()
    def add(a, b):
        return a + b

    result = add(1, 2)
    assert stored_flags(traced) & _wire.FLAG_TRACE
    assert drain(traced) == 1
    assert result.get() == 3

    producer, consumer = spans.one('enqueue '), spans.one('execute ')
    name = add.task_class.registered_name
    assert producer.name == 'enqueue %s' % name and consumer.name == 'execute %s' % name
    assert producer.kind is SpanKind.PRODUCER and consumer.kind is SpanKind.CONSUMER
    assert_child(consumer, producer)
    for span in (producer, consumer):
        attributes = span.attributes or {}
        assert attributes['messaging.system'] == 'sqlq'
        assert attributes['messaging.destination.name'] == 'test'
        assert attributes['messaging.message.id'] == result.id
        assert attributes['sqlq.task.name'] == name
    assert producer.attributes['messaging.operation.type'] == 'send'
    assert consumer.attributes['messaging.operation.type'] == 'process'
    assert consumer.attributes['sqlq.task.outcome'] == 'complete'
    assert consumer.attributes['sqlq.task.attempt'] == 1
    assert consumer.status.status_code is StatusCode.UNSET


def test_thread_consumer_joins_the_producer_trace(traced, spans, consumers):
    ran = threading.Event()

    @traced.task()
    def work(x):
        ran.set()
        return x

    tracer = spans.provider.get_tracer('app')
    with tracer.start_as_current_span('request') as request:
        result = work(7)
    consumer = traced.create_consumer(workers=1, worker_type='thread',
                                      health_check_interval=0.2)
    consumers.append(consumer)
    consumer.start()
    assert result.get(blocking=True, timeout=WAIT) == 7
    wait_for(lambda: spans.named('execute '), WAIT, 'the execution span')
    producer, execution = spans.one('enqueue '), spans.one('execute ')
    assert_child(producer, spans.one('request'))
    assert_child(execution, producer)
    assert execution.context.trace_id == request.get_span_context().trace_id


def test_asyncio_consumer_traces_each_run(traced, spans, consumers):
    tracer = spans.provider.get_tracer('app')

    @traced.task()
    async def fetch(x):
        with tracer.start_as_current_span('inside'):
            return x

    @traced.task()
    async def broken():
        raise KeyError('gone')

    result = fetch(4)
    broken()
    consumer = traced.create_consumer(workers=2, worker_type='asyncio',
                                      health_check_interval=0.2)
    consumers.append(consumer)
    consumer.start()
    assert result.get(blocking=True, timeout=WAIT) == 4
    wait_for(lambda: len(spans.named('execute ')) == 2, WAIT, 'two execution spans')
    run = spans.one('execute %s' % fetch.task_class.registered_name)
    assert_child(run, spans.one('enqueue %s' % fetch.task_class.registered_name))
    assert_child(spans.one('inside'), run)  # current on the event loop while it runs
    failed = spans.one('execute %s' % broken.task_class.registered_name)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events[0].attributes['exception.type'] == 'KeyError'


def test_failure_records_the_exception(traced, spans):
    @traced.task()
    def broken():
        raise ValueError('no good')

    broken()
    drain(traced)
    span = spans.one('execute ')
    assert span.status.status_code is StatusCode.ERROR
    assert 'ValueError: no good' in (span.status.description or '')
    [event] = span.events
    assert event.name == 'exception'
    assert event.attributes['exception.type'] == 'ValueError'
    assert span.attributes['sqlq.task.outcome'] == 'failed'
    assert span.attributes['sqlq.task.reason'] == 'error'


def test_a_retry_gives_one_span_per_attempt(traced, spans):
    @traced.task(retries=2)
    def flaky():
        raise RuntimeError('again')

    flaky()
    assert drain(traced) == 3
    producer = spans.one('enqueue ')
    attempts = spans.named('execute ')
    assert len(attempts) == 3
    for span in attempts:
        assert_child(span, producer)  # every attempt under the enqueue, side by side
        assert span.status.status_code is StatusCode.ERROR
    assert [s.attributes['sqlq.task.outcome'] for s in attempts] == ['retry', 'retry', 'failed']
    assert [s.attributes['sqlq.task.retries_left'] for s in attempts] == [2, 1, 0]


def test_revoked_and_expired_tasks_are_visible(traced, spans):
    @traced.task()
    def job(x):
        return x

    revoked = job(1)
    revoked.revoke()
    job.schedule(args=(2,), expires=-1)  # already expired when it comes up
    drain(traced)
    reasons = sorted(s.attributes['sqlq.task.reason'] for s in spans.named('execute '))
    assert reasons == ['expired', 'revoked']
    assert {s.attributes['sqlq.task.outcome'] for s in spans.named('execute ')} == {'skipped'}


def test_a_held_lock_is_visible(traced, spans):
    @traced.task()
    def exclusive():
        with traced.lock_task('resource'):
            return 'ran'

    with traced.lock_task('resource'):  # held by someone else while the task comes up
        exclusive()
        drain(traced)
    span = spans.one('execute ')
    assert span.attributes['sqlq.task.reason'] == 'locked'
    assert span.attributes['sqlq.task.outcome'] == 'failed'
    assert span.events[0].attributes['exception.type'].endswith('TaskLockedException')


def test_pipeline_steps_continue_the_trace(traced, spans):
    @traced.task()
    def first(x):
        return x + 1

    @traced.task()
    def second(x):
        return x * 10

    results = traced.enqueue(first.s(1).then(second))
    assert drain(traced) == 2
    assert results.get() == [2, 20]
    producer = spans.one('enqueue ')
    step1 = spans.one('execute %s' % first.task_class.registered_name)
    step2 = spans.one('execute %s' % second.task_class.registered_name)
    assert_child(step1, producer)
    assert_child(step2, step1)  # enqueued by the first step's run


def test_a_task_enqueued_by_a_task_is_its_child(traced, spans):
    @traced.task()
    def leaf():
        return 'leaf'

    @traced.task()
    def parent():
        leaf()

    parent()
    drain(traced)
    run = spans.one('execute %s' % parent.task_class.registered_name)
    inner = spans.named('enqueue %s' % leaf.task_class.registered_name)[0]
    assert_child(inner, run)
    assert_child(spans.one('execute %s' % leaf.task_class.registered_name), inner)


def test_spans_the_task_makes_are_children_of_its_run(traced, spans):
    tracer = spans.provider.get_tracer('app')

    @traced.task()
    def query():
        with tracer.start_as_current_span('sql'):
            return 1

    query()
    drain(traced)
    assert_child(spans.one('sql'), spans.one('execute '))


def test_enqueue_many_is_one_span_for_the_batch(traced, spans):
    @traced.task()
    def square(x):
        return x * x

    square.map(range(4))
    assert drain(traced) == 4
    batch = spans.one('enqueue_many ')
    assert batch.attributes['messaging.batch.message_count'] == 4
    assert 'messaging.message.id' not in batch.attributes
    runs = spans.named('execute ')
    assert len(runs) == 4
    for run in runs:
        assert_child(run, batch)


@pytest.mark.parametrize('nested', [False, True])
def test_chord_callback_continues_the_trace(traced, spans, nested):
    from sqlq import chord

    @traced.task()
    def part(x):
        return x

    @traced.task()
    def total(values):
        return sum(values)

    members = [chord([part.s(1), part.s(2)], total.s()) if nested else part.s(1),
               part.s(2)]
    handle = traced.enqueue(chord(members, total.s()))
    assert drain(traced) == (5 if nested else 3)
    assert handle.get() == (5 if nested else 3)
    assert len({span.context.trace_id for span in spans.all()}) == 1
    outer = spans.one('enqueue_chord ')
    assert outer.name == ('enqueue_chord test' if nested else
                          'enqueue_chord %s' % part.task_class.registered_name)
    callbacks = spans.named('execute %s' % total.task_class.registered_name)
    assert len(callbacks) == (2 if nested else 1)
    for callback in callbacks:
        assert_child(callback, outer)


def test_scheduled_task_keeps_its_context(traced, spans):
    @traced.task()
    def later(x):
        return x

    later.schedule(args=(1,), delay=60)
    due = traced.now() + 61
    assert len(traced.enqueue_due(due)) == 1  # decoded and written again: context kept
    traced.execute(traced.dequeue(), timestamp=due)
    producer = spans.one('schedule ')
    assert producer.attributes['messaging.operation.name'] == 'schedule'
    assert_child(spans.one('execute '), producer)


def test_message_without_context_still_runs(make_queue, spans):
    """Messages written without tracing (by an older sqlq, or a producer that does not
    trace) carry no context -- not one byte -- and run as a root span."""
    plain = make_queue()

    @plain.task(name='t.job')
    def job(x):
        return x

    result = job(5)
    assert not stored_flags(plain) & _wire.FLAG_TRACE
    instrument(plain, spans.provider)  # the consumer traces
    assert drain(plain) == 1
    assert result.get() == 5
    span = spans.one('execute t.job')
    assert span.parent is None
    uninstrument(plain)
    job(6)
    assert not stored_flags(plain) & _wire.FLAG_TRACE


def test_immediate_mode_run_is_a_child_of_the_enqueue(spans):
    queue = MemoryQueue('imm', immediate=True, tracing=spans.provider)

    @queue.task()
    def now(x):
        return x

    assert now(3).get() == 3
    producer = spans.one('enqueue ')
    assert_child(spans.one('execute '), producer)


@pytest.mark.parametrize('setting', ['no provider', 'disabled sdk'])
def test_tracing_on_but_nothing_to_record_adds_nothing(make_queue, monkeypatch, setting):
    """``tracing=True`` with no tracer provider set (the API's default), or a provider of a
    disabled SDK (OTEL_SDK_DISABLED): no span, and the message carries no context."""
    if setting == 'no provider':
        queue = make_queue(tracing=True)
    else:
        monkeypatch.setenv('OTEL_SDK_DISABLED', 'true')
        queue = make_queue(tracing=TracerProvider())
    assert queue.tracing.tracer() is None

    @queue.task()
    def job():
        return 1

    job()
    assert not stored_flags(queue) & _wire.FLAG_TRACE
    assert drain(queue) == 1


def test_follows_the_global_provider_once_it_is_set(tmp_path):
    """``tracing=True`` uses the global provider, from the moment the application sets it
    (in a process of its own: the global provider can be set once per process)."""
    code = textwrap.dedent('''
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter)
        from sqlq import SqliteQueue, _wire
        q = SqliteQueue(%r, tracing=True)
        job = q.task(name='j')(lambda: 1)

        def flags():
            raw = q.serializer.unseal(q.storage.enqueued_items()[-1])
            return raw[2] | raw[3] << 8

        job()
        assert not flags() & _wire.FLAG_TRACE
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        job()
        assert flags() & _wire.FLAG_TRACE
        q.execute(q.dequeue())
        q.execute(q.dequeue())
        names = sorted(span.name for span in exporter.get_finished_spans())
        assert names == ['enqueue j', 'execute j', 'execute j'], names
    ''') % str(tmp_path / 'q.db')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)


def test_tracing_without_opentelemetry_is_a_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'opentelemetry', None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"sqlq\[otel\]"):
        MemoryQueue('q', tracing=True)
    assert MemoryQueue('q').tracing is None


def test_opentelemetry_is_not_imported_unless_tracing_is_on(tmp_path):
    code = ('import sys\n'
            'from sqlq import SqliteQueue\n'
            'q = SqliteQueue(%r)\n'
            'job = q.task(name="j")(lambda: 1)\n'
            'job()\n'
            'q.execute(q.dequeue())\n'
            'assert not [m for m in sys.modules if m.startswith("opentelemetry")]\n'
            % str(tmp_path / 'q.db'))
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)


def test_carrier_round_trip():
    carrier = {'traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
               'tracestate': 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'baggage': 'k=v:w'}
    assert decode_carrier(encode_carrier(carrier)) == carrier
    assert decode_carrier(b'\xff\xfe') == {}
