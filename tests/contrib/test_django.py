"""sqlq.contrib.django in a real project (``django_project/``): ``manage.py sqlq_consume``
consumes what a view enqueued, ``on_commit_task`` enqueues only what commits, ``db_task``
closes Django's connections around each run, and the queue never shares Django's file."""
from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def test_a_view_enqueues_on_commit_and_the_consumer_runs_it(django_project):
    consumer = django_project.start()
    out = django_project.scenario('order', '21')
    assert out['value'] == {'order': out['order'], 'total': 21}
    assert out['confirmed'] is True  # the consumer's Django wrote the project's database
    # The queue has its own file, beside Django's.
    assert os.path.exists(os.path.join(django_project.dir, 'db-queue.sqlite3'))
    # Autodiscovery: billing.tasks is imported by nothing but sqlq_consume.
    assert ' + billing.tasks.invoice' in consumer.log()
    assert django_project.scenario('invoice', '7') == 'invoice 7'
    assert [line[3] for line in django_project.ledger('confirm')] == [str(out['order'])]


def test_a_rolled_back_transaction_enqueues_nothing(django_project):
    out = django_project.scenario('rollback', '5')
    assert out['status'] == 500 and out['orders'] == 0
    # The plain task called in the same transaction was enqueued at once; confirm_order not.
    assert out['pending'] == ['audit']
    assert django_project.scenario('pending') == ['audit']
    # (and djhuey's other exports are the queue's)
    assert django_project.scenario('exports') == {'queue': True, 'methods': [True] * 3,
                                                  'call_local': True}


def test_db_task_closes_connections_around_each_run(django_project):
    django_project.start('-w', '1')  # one worker thread: one Django connection
    seen = django_project.scenario('connection_states', 'db:a', 'db:b', 'plain:c', 'plain:d',
                                   'db:e')
    # A plain task leaves its connection open for the next (d saw c's); a db_task closes it
    # before its run (e) and after (c found b's closed).
    assert seen == [['db:a', False], ['db:b', False], ['plain:c', False], ['plain:d', True],
                    ['db:e', False]]


def test_the_queue_file_cannot_be_djangos_database(django_project):
    django_project.env['SQLQ_TEST_DJANGO_QUEUE_FILE'] = django_project.db
    proc = django_project.manage('sqlq_consume')
    assert proc.returncode != 0
    assert "is the SQLite file of Django's DATABASES['default']" in proc.stderr
    assert 'db-queue.sqlite3' in proc.stderr  # the file to use instead
    # Whatever asks for the queue first (here the URL check, importing views and tasks).
    check = django_project.manage('check')
    assert check.returncode != 0
    assert "is the SQLite file of Django's DATABASES['default']" in check.stderr
    assert not os.path.exists(django_project.db + '-wal')  # sqlq never opened it


def test_run_huey_is_sqlq_consume_with_the_settings_consumer_options(django_project):
    django_project.env['SQLQ_TEST_DJANGO_WORKERS'] = '2'  # SQLQ['consumer']['workers']
    consumer = django_project.start(command='run_huey')
    assert '2 thread worker(s)' in consumer.log()
    assert django_project.scenario('invoice', '8') == 'invoice 8'
    help_text = django_project.manage('run_huey', '--help').stdout
    for option in ('--workers', '--worker-type', '--scheduler-interval', '--verbose',
                   '--disable-autoload', '--verbosity'):
        assert option in help_text
