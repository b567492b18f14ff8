"""A queue's metrics in the Prometheus text exposition format (version 0.0.4), for
``sqlq metrics app.queue`` and the dashboard's ``/metrics``.

Written by hand to the format's specification rather than with ``prometheus-client``: every
figure is read from the database when it is asked for (the counters are the history's
all-time sums, kept by the storage), so the client library's registry of in-process counters
would add a dependency and nothing else. The output is checked with that library's parser in
the tests.

Families (label ``queue`` on every sample; ``task`` is a task name):

- gauges ``sqlq_pending_tasks``, ``sqlq_scheduled_tasks``, ``sqlq_running_tasks``,
  ``sqlq_dead_letters``, ``sqlq_stored_results``;
- counters ``sqlq_tasks_completed_total``, ``sqlq_tasks_failed_total``,
  ``sqlq_tasks_retried_total`` and ``sqlq_tasks_skipped_total`` (label ``reason``: revoked,
  expired, canceled), by task, from the history (none with ``history=False``; kept across
  pruning; reset by ``queue.flush()``);
- histogram ``sqlq_task_duration_seconds`` by task (runs that ran: every outcome but skipped);
- gauges ``sqlq_owner_heartbeat_timestamp_seconds`` and ``sqlq_owner_started_timestamp_seconds``
  (labels ``owner``, ``host``, ``pid``) of the consumer and worker processes, and
  ``sqlq_owner_claimed_tasks``;
- gauges ``sqlq_database_size_bytes`` and ``sqlq_wal_size_bytes``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

from .storage.types import DURATION_BUCKETS, RunStats

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['exposition', 'CONTENT_TYPE']

#: The Content-Type of the text format.
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

Labels = Sequence[Tuple[str, str]]

_COUNTERS = (('succeeded', 'sqlq_tasks_completed_total', 'Task runs that succeeded.'),
             ('failed', 'sqlq_tasks_failed_total', 'Task runs that failed for good.'),
             ('retried', 'sqlq_tasks_retried_total',
              'Task runs that failed and were retried.'))
_SKIPPED = ('revoked', 'expired', 'canceled')


def _escape_label(value: str) -> str:
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _escape_help(text: str) -> str:
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def _number(value: float) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    return repr(float(value))


class _Writer:
    """Families of samples, each with its HELP and TYPE lines once."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def family(self, name: str, kind: str, help: str) -> None:
        self.lines.append('# HELP %s %s' % (name, _escape_help(help)))
        self.lines.append('# TYPE %s %s' % (name, kind))

    def sample(self, name: str, labels: Labels, value: float) -> None:
        text = ','.join('%s="%s"' % (key, _escape_label(str(val))) for key, val in labels)
        self.lines.append('%s{%s} %s' % (name, text, _number(value)) if text
                          else '%s %s' % (name, _number(value)))

    def text(self) -> str:
        return '\n'.join(self.lines) + '\n'


def exposition(queue: 'Queue', stats: Optional[Dict[str, object]] = None) -> str:
    """The metrics of ``queue`` as Prometheus text (``stats``: ``queue.stats()`` if already
    read)."""
    stats = stats if stats is not None else queue.stats()
    q = (('queue', queue.name),)
    out = _Writer()
    for key, name, help in (('pending', 'sqlq_pending_tasks', 'Tasks ready to run.'),
                            ('scheduled', 'sqlq_scheduled_tasks',
                             'Tasks waiting for their eta.'),
                            ('running', 'sqlq_running_tasks', 'Tasks claimed by a worker.'),
                            ('failed', 'sqlq_dead_letters',
                             'Dead letters: tasks that failed for good or could not run.'),
                            ('results', 'sqlq_stored_results', 'Stored task results.')):
        out.family(name, 'gauge', help)
        out.sample(name, q, float(stats.get(key) or 0))  # type: ignore[arg-type]
    _runs(out, q, queue.storage.history_stats())
    _owners(out, q, queue)
    for key, name, help in (('db_size', 'sqlq_database_size_bytes',
                             'Size of the database file (Redis: memory used).'),
                            ('wal_size', 'sqlq_wal_size_bytes',
                             'Size of the write-ahead log (Redis: append-only file).')):
        out.family(name, 'gauge', help)
        out.sample(name, q, float(stats.get(key) or 0))  # type: ignore[arg-type]
    return out.text()


def _runs(out: _Writer, q: Labels, rows: Iterable[RunStats]) -> None:
    by: Dict[Tuple[str, str], RunStats] = {(r.name, r.outcome): r for r in rows}
    names = sorted({name for name, _ in by})
    for outcome, metric, help in _COUNTERS:
        out.family(metric, 'counter', help)
        for name in names:
            row = by.get((name, outcome))
            if row is not None:
                out.sample(metric, tuple(q) + (('task', name),), row.runs)
    out.family('sqlq_tasks_skipped_total', 'counter',
               'Tasks that did not run: revoked, expired, or canceled by a hook.')
    for name in names:
        for reason in _SKIPPED:
            row = by.get((name, reason))
            if row is not None:
                out.sample('sqlq_tasks_skipped_total',
                           tuple(q) + (('task', name), ('reason', reason)), row.runs)
    metric = 'sqlq_task_duration_seconds'
    out.family(metric, 'histogram', 'How long task functions ran.')
    for name in names:
        ran = [r for (n, o), r in by.items() if n == name and o not in _SKIPPED]
        if not ran:
            continue
        buckets = [sum(column) for column in zip(*(r.buckets for r in ran))]
        labels = tuple(q) + (('task', name),)
        cumulative = 0
        for bound, count in zip(DURATION_BUCKETS, buckets):
            cumulative += count
            out.sample(metric + '_bucket', labels + (('le', _number(bound)),), cumulative)
        total = sum(buckets)
        out.sample(metric + '_bucket', labels + (('le', '+Inf'),), total)
        out.sample(metric + '_sum', labels, float(sum(r.seconds for r in ran)))
        out.sample(metric + '_count', labels, total)


def _owners(out: _Writer, q: Labels, queue: 'Queue') -> None:
    storage = queue.storage
    owners = storage.owners()
    claims = storage.claim_owners()
    for metric, help, field in (
            ('sqlq_owner_heartbeat_timestamp_seconds',
             'Last heartbeat of a consumer or worker process (unix time).', 'heartbeat_at'),
            ('sqlq_owner_started_timestamp_seconds',
             'First heartbeat of a consumer or worker process (unix time).', 'started_at')):
        out.family(metric, 'gauge', help)
        for owner in owners:
            value = getattr(owner, field)
            if value is not None:
                out.sample(metric, tuple(q) + (('owner', owner.id), ('host', owner.host or ''),
                                               ('pid', str(owner.pid or ''))), value)
    out.family('sqlq_owner_claimed_tasks', 'gauge', 'Tasks of the queue a process has claimed.')
    for owner_id in sorted(claims):
        out.sample('sqlq_owner_claimed_tasks', tuple(q) + (('owner', owner_id),),
                   claims[owner_id])
