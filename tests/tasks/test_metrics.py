"""The Prometheus exposition (``sqlq.metrics``, ``sqlq metrics``): parsed with
prometheus-client's own parser, on every backend."""
from __future__ import annotations

import pytest

from sqlq import CancelExecution
from sqlq.metrics import exposition
from sqlq.storage.types import DURATION_BUCKETS
from tests._helpers import drain

parser = pytest.importorskip('prometheus_client.parser')


def families(text):
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def samples(family, **labels):
    return [s for s in family.samples
            if all(s.labels.get(k) == v for k, v in labels.items())]


def value(family, suffix='', **labels):
    (sample,) = [s for s in samples(family, **labels) if s.name == family.name + suffix]
    return sample.value


def test_gauges_counters_histogram_and_heartbeats(queue):
    @queue.task(name='app.ok')
    def ok(i):
        return i

    @queue.task(name='app.flaky', retries=1)
    def flaky():
        raise ValueError('no')

    @queue.task(name='app.vetoed')
    def vetoed():
        return 1

    @queue.pre_execute()
    def veto(task):
        if task.name == 'app.vetoed':
            raise CancelExecution()

    for i in range(3):
        ok(i)
    flaky()
    vetoed()
    drain(queue)
    ok.schedule((9,), delay=3600)
    ok(10)
    queue.heartbeat()
    parsed = families(exposition(queue))
    q = {'queue': 'test'}
    assert value(parsed['sqlq_pending_tasks'], **q) == 1
    assert value(parsed['sqlq_scheduled_tasks'], **q) == 1
    assert value(parsed['sqlq_running_tasks'], **q) == 0
    assert value(parsed['sqlq_dead_letters'], **q) == 1
    assert parsed['sqlq_tasks_completed'].type == 'counter'
    assert value(parsed['sqlq_tasks_completed'], '_total', task='app.ok') == 3
    assert value(parsed['sqlq_tasks_failed'], '_total', task='app.flaky') == 1
    assert value(parsed['sqlq_tasks_retried'], '_total', task='app.flaky') == 1
    assert value(parsed['sqlq_tasks_skipped'], '_total', task='app.vetoed',
                 reason='canceled') == 1
    histogram = parsed['sqlq_task_duration_seconds']
    assert histogram.type == 'histogram'
    buckets = [s for s in samples(histogram, task='app.ok') if s.name.endswith('_bucket')]
    assert len(buckets) == len(DURATION_BUCKETS) + 1 and buckets[-1].labels['le'] == '+Inf'
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)  # cumulative
    assert value(histogram, '_count', task='app.ok') == 3 == buckets[-1].value
    assert value(histogram, '_count', task='app.flaky') == 2
    assert not samples(histogram, task='app.vetoed')  # it never ran
    beats = parsed['sqlq_owner_heartbeat_timestamp_seconds']
    assert value(beats, owner=queue.storage.owner_id) > 1e9
    assert 'sqlq_database_size_bytes' in parsed and 'sqlq_wal_size_bytes' in parsed


def test_labels_are_escaped(queue):
    name = 'odd "name" with \\ and\nnewline'

    @queue.task(name=name)
    def odd():
        return 1

    odd()
    drain(queue)
    parsed = families(exposition(queue))
    assert value(parsed['sqlq_tasks_completed'], '_total', task=name) == 1


def test_without_history_only_gauges(make_queue):
    queue = make_queue(history=False)

    @queue.task()
    def ok():
        return 1

    ok()
    drain(queue)
    parsed = families(exposition(queue))
    assert value(parsed['sqlq_pending_tasks'], queue='test') == 0
    assert parsed['sqlq_tasks_completed'].samples == []


@pytest.mark.parametrize('backend', ['sqlite'], indirect=True)
def test_metrics_command(queue, tmp_path, monkeypatch, capsys):
    from sqlq.cli import main
    app = tmp_path / 'metrics_app.py'
    app.write_text('from sqlq import SqliteQueue\nqueue = SqliteQueue(%r, name="m")\n'
                   '@queue.task(name="t")\ndef t():\n    return 1\n' % str(tmp_path / 'm.db'))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(['metrics', 'metrics_app.queue']) == 0
    parsed = families(capsys.readouterr().out)
    assert value(parsed['sqlq_pending_tasks'], queue='m') == 0
