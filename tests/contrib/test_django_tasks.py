"""SqlqBackend: Django's Tasks framework (``django.tasks`` on Django 6, the ``django_tasks``
backport before) on sqlq, end to end in the test project: ``.enqueue()`` in a producer
process, ``manage.py sqlq_consume`` runs the call (``--queue-name N`` those of queue ``N``),
``.get_result(id)`` reads its status, return value and errors back."""
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
    emails = tasks_project.start('--queue-name', 'emails', name='emails')  # jobs.fail's queue
    out = tasks_project.scenario('dj_run', os.path.join(tasks_project.dir, 'flaky-flag'))
    add = out['add']
    assert add['status'] == 'SUCCESSFUL' and add['value'] == 5
    assert add['attempts'] == 1 and add['errors'] == []
    assert add['enqueued'] and add['started'] and add['finished']
    assert out['add_again'] == add
    fail = out['fail']
    assert fail['status'] == 'FAILED' and fail['value_error'] == 'Task failed'
    assert fail['queue_name'] == 'emails' and fail['finished']
    assert fail['worker_pids'] == [emails.proc.pid]
    assert add['worker_pids'] == [consumer.proc.pid]
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


def test_a_queue_name_runs_only_in_the_consumers_started_for_it(tasks_project):
    default = tasks_project.start('-w', '1')
    out = tasks_project.scenario('dj_queues_enqueue')
    emails_id, default_id = out['emails_id'], out['default_id']
    # The default consumer ran the call to 'default', enqueued after the one to 'emails'...
    assert out['default']['status'] == 'SUCCESSFUL' and out['default']['value'] == 22
    assert out['default']['worker_pids'] == [default.proc.pid]
    # ... which is still waiting, in the sqlq queue of 'emails' (a sibling in the same file).
    emails_after = out['emails_after']
    assert emails_after['status'] == 'READY' and emails_after['queue_name'] == 'emails'
    assert not emails_after['started'] and emails_after['worker_pids'] == []
    assert out['sqlq_names'] == ['shop', 'shop.emails']
    assert out['pending'] == {'default': [], 'emails': [emails_id]}
    assert out['records'] == {'default': False, 'emails': True}
    # The id says where its record is: a plain sqlq id on 'default', as before.
    assert emails_id.startswith('emails:') and ':' not in default_id
    # sqlq_consume --queue-name emails runs it: only the framework's runner is on that queue.
    emails = tasks_project.start('--queue-name', 'emails', name='emails')
    assert ' + sqlq.contrib.django.run_task' in emails.log()
    assert 'billing.tasks.invoice' not in emails.log()  # the plain sqlq tasks stay on default
    assert 'billing.tasks.invoice' in default.log()
    done = tasks_project.scenario('dj_result', emails_id)  # get_result in another process
    assert done['status'] == 'SUCCESSFUL' and done['value'] == 21
    assert done['worker_pids'] == [emails.proc.pid] and done['queue_name'] == 'emails'
    again = tasks_project.scenario('dj_result', default_id)
    assert again['value'] == 22 and again['worker_pids'] == [default.proc.pid]
    assert tasks_project.scenario('dj_unknown_ids') == dict.fromkeys(
        ['emails:no-such-id', 'nowhere:no-such-id', 'no-such-id'], 'TaskResultDoesNotExist')
    # The plain sqlq tasks keep running on the default queue's consumer.
    assert tasks_project.scenario('invoice', '9') == 'invoice 9'


def test_queue_name_misconfigurations_are_reported(tasks_project):
    proc = tasks_project.manage('sqlq_consume', '--queue-name', 'nowhere')
    assert proc.returncode != 0
    assert "--queue-name 'nowhere' is in no SqlqBackend's QUEUES (default, emails)" in proc.stderr
    help_text = ' '.join(tasks_project.manage('sqlq_consume', '--help').stdout.split())
    assert '--queue-name NAME' in help_text and 'one consumer per queue name' in help_text
    assert tasks_project.manage('check').returncode == 0
    tasks_project.env['SQLQ_TEST_DJANGO_QUEUES_STR'] = '1'
    check = tasks_project.manage('check')
    assert check.returncode != 0 and 'sqlq.E003' in check.stderr
    assert "TASKS['retrying']['QUEUES'] must be a list of queue names, not 'emails'" \
        in check.stderr
    del tasks_project.env['SQLQ_TEST_DJANGO_QUEUES_STR']
    # SQLQ as a queue object: no sibling queue can be made from it for 'emails'.
    tasks_project.env['SQLQ_TEST_DJANGO_QUEUE_OBJECT'] = '1'
    check = tasks_project.manage('check')
    assert check.returncode != 0
    assert "sqlq.E002" in check.stderr
    assert "TASKS['default']['QUEUES'] allows 'emails', but settings.SQLQ is a queue object" \
        in check.stderr
    proc = tasks_project.manage('sqlq_consume', '--queue-name', 'emails')
    assert proc.returncode != 0 and 'settings.SQLQ is a queue object' in proc.stderr
