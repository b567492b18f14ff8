"""SqlqBackend: Django's Tasks framework (``django.tasks`` on Django 6, the ``django_tasks``
backport before) on sqlq, end to end in the test project: ``.enqueue()`` in a producer
process, ``manage.py sqlq_consume`` runs the call, ``.get_result(id)`` reads its status,
return value and errors back."""
from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def test_priority_run_after_unknown_ids_and_enqueue_on_commit(tasks_project):
    out = tasks_project.scenario('dj_mapping')
    urgent, later = out['urgent'], out['later']
    assert urgent['status'] == later['status'] == 'READY'
    assert urgent['enqueued'] and not urgent['started'] and urgent['attempts'] == 0
    assert urgent['value_error'] == 'Task has not finished yet'
    assert urgent['priority'] == 7 and out['urgent_priority'] == 7  # sqlq's priority
    assert not out['later_pending'] and out['later_eta_error'] < 0.001  # sqlq's schedule
    assert out['unknown'] == 'TaskResultDoesNotExist'
    assert "Queue 'nowhere' is not valid for backend" in out['bad_queue']
    assert 'Unsupported type' in out['bad_argument']  # arguments must be JSON
    # enqueue_on_commit: nothing of a rolled-back transaction; a commit enqueues.
    assert out['rolled_back'] == 'TaskResultDoesNotExist'
    assert out['in_transaction_enqueued_at'] is None
    assert out['committed']['status'] == 'READY' and out['committed']['enqueued']


def test_tasks_run_by_sqlq_consume_and_read_back(tasks_project):
    consumer = tasks_project.start('-w', '2')
    assert ' + sqlq.contrib.django.run_task' in consumer.log()
    out = tasks_project.scenario('dj_run', os.path.join(tasks_project.dir, 'flaky-flag'))
    add = out['add']
    assert add['status'] == 'SUCCESSFUL' and add['value'] == 5
    assert add['attempts'] == 1 and add['errors'] == []
    assert add['enqueued'] and add['started'] and add['finished']
    assert out['add_again'] == add
    fail = out['fail']
    assert fail['status'] == 'FAILED' and fail['value_error'] == 'Task failed'
    assert fail['queue_name'] == 'emails' and fail['finished']
    [(exception, traceback)] = fail['errors']
    assert exception == 'builtins.ValueError'
    assert 'ValueError: boom' in traceback and 'shop/jobs.py' in traceback
    assert out['whoami']['value'] == {'tag': 'x', 'attempt': 1, 'id': out['whoami_result_id']}
    assert out['double']['value'] == 8  # an async def task
    # OPTIONS {'retries': 1}: the failed first attempt is an error, then ready again.
    flaky = out['flaky']
    assert flaky['status'] == 'SUCCESSFUL' and flaky['value'] == 'second attempt'
    assert flaky['attempts'] == 2
    assert [e[0] for e in flaky['errors']] == ['builtins.OSError']
