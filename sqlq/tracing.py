"""Optional OpenTelemetry tracing: a PRODUCER span around each enqueue, a CONSUMER span around
each execution attempt, and the trace context carried in the message between them.

Opt-in, per queue: ``SqliteQueue(path, tracing=True)`` (the global tracer provider),
``tracing=provider`` (that one), or :func:`instrument` for a queue made elsewhere. It needs
``opentelemetry-api`` (``pip install 'sqlq[otel]'``), imported here only, when a queue turns
tracing on. Spans are recorded only once a tracer provider is configured (the SDK's): until
then, and when the SDK is disabled (``OTEL_SDK_DISABLED``), the hooks return at once and no
message carries a context.

- Enqueue: one span per call -- ``enqueue <task>`` (``schedule <task>`` for a future eta),
  ``enqueue_many <task>`` for ``enqueue_many``/``map``/a group (one span for the batch, every
  message carrying it: a map of 10,000 tasks costs one span, not 10,000), ``enqueue_chord``
  for a chord.
- Message: the context the global propagator injects (W3C ``traceparent``/``tracestate``,
  and baggage, by default) as ``key:value`` lines in the message's optional ``trace`` field
  (``sqlq._wire``); a message enqueued without a span has none (no bytes). A task keeps its
  context across retries and the schedule; a follow-up the running task enqueues (the next
  pipeline step, an error handler, a task it calls) gets the running task's context.
- Execution: ``execute <task>``, a CHILD of the producer's span (not a link: one message is
  processed per span, so the producer's trace shows what its enqueue caused, as the Celery
  instrumentation does), or of the current span for a local run (immediate mode). One span
  per attempt; its outcome in ``sqlq.task.outcome`` (complete, retry, failed, skipped,
  not-due, interrupted) and ``sqlq.task.reason`` (error, timeout, locked, rate-limited,
  canceled, expired, revoked); a failure logged as an error records the exception and sets
  the status to ERROR.
"""
from __future__ import annotations

import contextlib
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    ContextManager,
    Dict,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

from .exceptions import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from .api import Queue
    from .decisions import Outcome
    from .delivery import Delivery
    from .task import Task

__all__ = ['Tracing', 'ExecutionSpan', 'instrument', 'uninstrument', 'tracing_for',
           'encode_carrier', 'decode_carrier']

T = TypeVar('T')
#: ``messaging.system`` of every span.
SYSTEM = 'sqlq'
#: What ``tracing=`` accepts: off, on with the global provider, or on with this provider.
TracingSetting = Union[bool, None, 'TracerProvider']
_NOTHING: ContextManager[None] = contextlib.nullcontext()
# The reasons an outcome's signals give, most specific first.
_REASONS = ('timeout', 'locked', 'rate-limited', 'canceled', 'expired', 'revoked', 'error')


def encode_carrier(carrier: Dict[str, str]) -> bytes:
    """The message's ``trace`` bytes for a propagator's carrier (header names and values:
    neither holds a newline, nor a name a colon)."""
    return '\n'.join('%s:%s' % item for item in carrier.items()).encode('utf-8')


def decode_carrier(data: bytes) -> Dict[str, str]:
    """The carrier ``encode_carrier`` wrote (unreadable bytes: an empty carrier)."""
    carrier: Dict[str, str] = {}
    for line in data.decode('utf-8', 'replace').split('\n'):
        key, sep, value = line.partition(':')
        if sep:
            carrier[key] = value
    return carrier


class Tracing:
    """One queue's tracer: the hooks the enqueue and execution paths call when it is set."""

    def __init__(self, queue_name: str, provider: Optional['TracerProvider'] = None) -> None:
        from opentelemetry import propagate, trace  # the one import of opentelemetry
        from opentelemetry.trace import NoOpTracer, NoOpTracerProvider, ProxyTracerProvider
        from opentelemetry.trace.status import Status, StatusCode
        self._trace, self._propagate = trace, propagate
        self._no_provider = (ProxyTracerProvider, NoOpTracerProvider)
        self._no_tracer = NoOpTracer
        self._status, self._status_error = Status, StatusCode.ERROR
        self._producer, self._consumer = trace.SpanKind.PRODUCER, trace.SpanKind.CONSUMER
        self.queue_name = queue_name
        self.provider = provider
        self._seen: Any = None
        self._tracer: Optional['Tracer'] = None
        # The global provider, read where the API keeps it: ``get_tracer_provider()`` looks
        # up an environment variable on each call until one is set, which would make an
        # idle tracer cost more than the rest of a no-op run. A provider named by that
        # variable is loaded now; an API without that global (never seen) is asked each time.
        trace.get_tracer_provider()
        self._direct = hasattr(trace, '_TRACER_PROVIDER')

    def tracer(self) -> Optional['Tracer']:
        """The tracer spans come from; None while no provider is configured (or the SDK is
        disabled): then nothing is traced. Follows the global provider once it is set."""
        provider = self.provider
        if provider is None:
            provider = self._trace._TRACER_PROVIDER if self._direct else \
                self._trace.get_tracer_provider()
            if provider is None:
                return None
        if provider is not self._seen:
            from . import __version__
            tracer = None if isinstance(provider, self._no_provider) else \
                provider.get_tracer('sqlq', __version__)
            self._tracer = None if isinstance(tracer, self._no_tracer) else tracer
            self._seen = provider
        return self._tracer

    def error(self, description: str) -> Any:
        """An ERROR status with ``description``."""
        return self._status(self._status_error, description)

    def _attributes(self, operation: str, kind: str) -> Dict[str, Any]:
        return {'messaging.system': SYSTEM, 'messaging.destination.name': self.queue_name,
                'messaging.operation.type': kind, 'messaging.operation.name': operation}

    # -- producer ------------------------------------------------------------------------------
    def sending(self, tasks: Sequence['Task'], operation: Optional[str] = None
                ) -> ContextManager[Any]:
        """The PRODUCER span of one enqueue call writing ``tasks``, current in the block (so
        that ``stamp`` gives them its context)."""
        tracer = self.tracer()
        if tracer is None or not tasks:
            return _NOTHING
        names = {getattr(task, 'registered_name', '') for task in tasks}  # (chords in chords)
        if operation is None:
            operation = 'enqueue_many' if len(tasks) > 1 else \
                'enqueue' if tasks[0].eta is None else 'schedule'
        attributes = self._attributes(operation, 'send')
        if len(tasks) == 1:
            attributes['messaging.message.id'] = tasks[0].id
        else:
            attributes['messaging.batch.message_count'] = len(tasks)
        if len(names) == 1 and '' not in names:
            name = names.pop()
            attributes['sqlq.task.name'] = name
        else:
            name = self.queue_name
        return tracer.start_as_current_span('%s %s' % (operation, name), kind=self._producer,
                                            attributes=attributes)

    def stamp(self, task: 'Task') -> None:
        """Give ``task`` the current trace context (if there is one to propagate)."""
        if self.tracer() is None:
            return
        carrier: Dict[str, str] = {}
        self._propagate.inject(carrier)
        if carrier:
            task.trace_context = encode_carrier(carrier)

    # -- consumer ------------------------------------------------------------------------------
    def start(self, delivery: 'Delivery') -> Optional['ExecutionSpan']:
        """Start the CONSUMER span of one attempt (``delivery.span``); None if not traced."""
        tracer = self.tracer()
        if tracer is None:
            return None
        task = delivery.task
        parent = None if task.trace_context is None else \
            self._propagate.extract(decode_carrier(task.trace_context))
        attributes = self._attributes('execute', 'process')
        attributes['messaging.message.id'] = task.id
        attributes['sqlq.task.name'] = task.registered_name
        attributes['sqlq.task.attempt'] = delivery.attempts
        attributes['sqlq.task.retries_left'] = task.options.retries
        span = tracer.start_span('execute %s' % task.registered_name, context=parent,
                                 kind=self._consumer, attributes=attributes)
        delivery.span = ExecutionSpan(self, span, delivery)
        return delivery.span

    @staticmethod
    def admit(delivery: 'Delivery', admit: Callable[[], bool]) -> bool:
        """``admit()`` (the checks before a run) with the new span current; the span ends
        at once if the task does not run."""
        span = delivery.span
        assert span is not None
        admitted = span.within(admit)
        if not admitted:
            span.end()
        return admitted


class ExecutionSpan:
    """The CONSUMER span of one delivery, from its admission to its recorded outcome."""

    __slots__ = ('tracing', 'span', 'delivery', 'inside')

    def __init__(self, tracing: Tracing, span: 'Span', delivery: 'Delivery') -> None:
        self.tracing = tracing
        self.span = span
        self.delivery = delivery
        #: True while a step runs within it (the step's own check then lets it through).
        self.inside = False

    def scope(self) -> ContextManager[Any]:
        """The span as the current one (the task's own spans, and what it enqueues, are its
        children)."""
        scope: ContextManager[Any] = self.tracing._trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False)
        return scope

    def within(self, step: Callable[[], T]) -> T:
        """``step()`` with the span current; an exception escaping it ends the span."""
        with self.scope():
            self.inside = True
            try:
                return step()
            except BaseException as exc:
                self.escaped(exc)
                raise
            finally:
                self.inside = False

    async def awithin(self, step: Callable[[], Awaitable[T]]) -> T:
        """:meth:`within` for a coroutine, awaited in the caller's task."""
        with self.scope():
            self.inside = True
            try:
                return await step()
            except BaseException as exc:
                self.escaped(exc)
                raise
            finally:
                self.inside = False

    def outcome(self, outcome: 'Outcome') -> None:
        """Record what the attempt came to (called for each outcome recorded)."""
        span = self.span
        span.set_attribute('sqlq.task.outcome', outcome.kind)
        signals = {signal for signal, _, _ in outcome.announce}
        signals.update(signal for signal, _, _ in outcome.on_settled)
        for reason in _REASONS:
            if reason in signals:
                span.set_attribute('sqlq.task.reason', reason)
                break
        if outcome.failure is not None:
            exception = outcome.failure[0]
            span.record_exception(exception)
            span.set_status(self.tracing.error('%s: %s' % (type(exception).__name__,
                                                            exception)))

    def escaped(self, exc: BaseException) -> None:
        """An exception left the execution (an interruption, a storage error): end here."""
        span = self.span
        span.set_attribute('sqlq.task.outcome', 'interrupted')
        span.record_exception(exc)
        if isinstance(exc, Exception):
            span.set_status(self.tracing.error('%s: %s' % (type(exc).__name__, exc)))
        self.end()

    def end(self) -> None:
        if self.delivery.span is self:
            self.delivery.span = None
            self.span.end()


def tracing_for(setting: TracingSetting, queue_name: str) -> Optional[Tracing]:
    """The Tracing of a queue's ``tracing=`` option (None: off)."""
    if setting is None or setting is False:
        return None
    try:
        return Tracing(queue_name, None if setting is True else setting)
    except ImportError as exc:
        raise ConfigurationError("tracing needs opentelemetry-api: pip install 'sqlq[otel]' "
                                 '(%s)' % exc) from None


def instrument(queue: 'Queue', provider: Optional['TracerProvider'] = None) -> None:
    """Turn tracing on for ``queue`` (made elsewhere: a framework's settings...): its enqueues
    and runs in this process are traced from now on."""
    queue.tracing = tracing_for(True if provider is None else provider, queue.name)


def uninstrument(queue: 'Queue') -> None:
    """Turn tracing off for ``queue`` (messages keep the context they carry)."""
    queue.tracing = None
