"""What ``manage.py shop SCENARIO`` runs: a view called through Django's test client, tasks
enqueued and their results read back, as a producer process of the project does. Each returns
something JSON can print."""
import datetime
import time

from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone

from sqlq.contrib.django import get_queue
from sqlq.contrib.django._queues import queue_for

from .models import Order

WAIT = 30.0


def migrate():
    call_command('migrate', run_syncdb=True, verbosity=0)
    return 'ok'


def _post(**data):
    return Client(raise_request_exception=False).post('/orders/', data)


def order(total):
    """The view enqueues confirm_order on commit; the result is read back from the consumer."""
    response = _post(total=total).json()
    value = get_queue().result(response['result'], blocking=True, timeout=WAIT)
    confirmed = Order.objects.get(pk=response['order']).confirmed
    return {'order': response['order'], 'value': value, 'confirmed': confirmed}


def rollback(total):
    """The view's transaction rolls back after enqueueing."""
    response = _post(total=total, fail='1')
    return {'status': response.status_code, 'orders': Order.objects.count(),
            'pending': [task.name for task in get_queue().pending()]}


def pending():
    return [task.name for task in get_queue().pending()]


def exports():
    """djhuey's exports: the queue's methods, read from the one queue."""
    import sqlq.contrib.django as module
    from sqlq.contrib.django import queue, revoke_by_id, signal
    from sqlq.contrib.django import result as result_of
    return {'queue': queue is get_queue(), 'methods': [
        getattr(f, '__self__', None) is get_queue() for f in (revoke_by_id, signal, result_of)],
        'call_local': module.db_task()(_count).call_local is _count}


def _count():
    return Order.objects.count()


def connection_states(*tags):
    """Run ``db:TAG`` or ``plain:TAG`` tasks one after another; what each saw."""
    from .tasks import db_connection_state, plain_connection_state
    seen = []
    for item in tags:
        kind, tag = item.split(':')
        wrapper = db_connection_state if kind == 'db' else plain_connection_state
        seen.append([item, wrapper(tag).get(blocking=True, timeout=WAIT)])
    return seen


def invoice(number):
    from billing.tasks import invoice
    return invoice(number).get(blocking=True, timeout=WAIT)


# -- Django's Tasks framework ------------------------------------------------------------------
def _summary(result):
    summary = {'id': result.id, 'status': str(result.status), 'attempts': result.attempts,
               'errors': [[e.exception_class_path, e.traceback] for e in result.errors],
               'enqueued': result.enqueued_at is not None,
               'started': result.started_at is not None,
               'finished': result.finished_at is not None,
               'queue_name': result.task.queue_name, 'priority': result.task.priority,
               'path': result.task.module_path,
               'worker_pids': [int(w.rpartition(':')[2]) for w in result.worker_ids]}
    try:
        summary['value'] = result.return_value
    except ValueError as exc:
        summary['value_error'] = str(exc)
    return summary


def _until_finished(result):
    deadline = time.monotonic() + WAIT
    while True:
        result.refresh()
        if result.is_finished:
            return result
        if time.monotonic() > deadline:
            raise AssertionError('task %s not finished after %ss: %s'
                                 % (result.id, WAIT, result.status))
        # Woken by the worker's write to the record, in the queue of the call's queue name.
        queue_for(result.task.queue_name).wait_for_change(0.5, topic='data')


def dj_mapping():
    """priority and run_after as sqlq sees them; unknown ids; enqueue_on_commit."""
    from django.core.exceptions import ImproperlyConfigured  # noqa: F401

    from sqlq.contrib.django._tasks_api import InvalidTask, TaskResultDoesNotExist

    from . import jobs
    queue = get_queue()
    urgent = jobs.add.using(priority=7).enqueue(1, 2)
    run_after = timezone.now() + datetime.timedelta(hours=1)
    later = jobs.add.using(run_after=run_after).enqueue(3, 4)
    pending = {task.id: task.options.priority for task in queue.pending()}
    scheduled = {task.id: queue.time.to_timestamp(task.eta) for task in queue.scheduled()}
    out = {'urgent': _summary(jobs.add.get_result(urgent.id)),
           'later': _summary(jobs.add.get_result(later.id)),
           'urgent_priority': pending.get(urgent.id),
           'later_eta_error': abs(scheduled[later.id] - run_after.timestamp()),
           'later_pending': later.id in pending}
    try:
        jobs.add.get_result('no-such-id')
    except TaskResultDoesNotExist:
        out['unknown'] = 'TaskResultDoesNotExist'
    try:
        jobs.add.using(queue_name='nowhere').enqueue(1, 1)
    except InvalidTask as exc:
        out['bad_queue'] = str(exc)
    try:
        jobs.add.enqueue(object(), 1)
    except TypeError as exc:
        out['bad_argument'] = str(exc)
    on_commit = jobs.add.using(backend='on_commit')
    try:
        with transaction.atomic():
            dropped = on_commit.enqueue(5, 5)
            raise RuntimeError('rollback')
    except RuntimeError:
        pass
    try:
        on_commit.get_result(dropped.id)
    except TaskResultDoesNotExist:
        out['rolled_back'] = 'TaskResultDoesNotExist'
    with transaction.atomic():
        kept = on_commit.enqueue(6, 6)
        out['in_transaction_enqueued_at'] = kept.enqueued_at
    out['committed'] = _summary(on_commit.get_result(kept.id))
    return out


def dj_run(flag_path):
    """Tasks of every kind, enqueued, run by the consumer, read back."""
    from . import jobs
    calls = {'add': jobs.add.enqueue(2, 3), 'fail': jobs.fail.enqueue('boom'),
             'whoami': jobs.whoami.enqueue('x'), 'double': jobs.double.enqueue(4),
             'flaky': jobs.flaky.enqueue(flag_path)}
    out = {name: _summary(_until_finished(result)) for name, result in calls.items()}
    out['whoami_result_id'] = calls['whoami'].id
    # A fresh read, by id through the task (from any process: here the same one).
    out['add_again'] = _summary(jobs.add.get_result(calls['add'].id))
    return out


def dj_queues_enqueue():
    """A call to the queue 'emails', then one to 'default' that the default consumer runs:
    where each went, and the 'emails' call still waiting after the later one ran."""
    from sqlq.contrib.django.backend import RECORD_PREFIX

    from . import jobs
    emails = jobs.add.using(queue_name='emails').enqueue(20, 1)
    default = jobs.add.enqueue(20, 2)
    done = _until_finished(default)
    emails_queue = queue_for('emails')
    return {
        'emails_id': emails.id, 'default_id': default.id,
        'default': _summary(done),
        'emails_after': _summary(jobs.add.get_result(emails.id)),
        'sqlq_names': [get_queue().name, emails_queue.name],
        'pending': {'default': [t.id for t in get_queue().pending()],
                    'emails': [t.id for t in emails_queue.pending()]},
        'records': {'default': get_queue().get(RECORD_PREFIX + emails.id, peek=True) is not None,
                    'emails': emails_queue.get(RECORD_PREFIX + emails.id, peek=True) is not None}}


def dj_result(result_id):
    """A call's result read by id (in a process that enqueued nothing), once finished."""
    from . import jobs
    return _summary(_until_finished(jobs.add.get_result(result_id)))


def dj_unknown_ids():
    from sqlq.contrib.django._tasks_api import TaskResultDoesNotExist

    from . import jobs
    out = {}
    for made_up in ('emails:no-such-id', 'nowhere:no-such-id', 'no-such-id'):
        try:
            jobs.add.get_result(made_up)
        except TaskResultDoesNotExist:
            out[made_up] = 'TaskResultDoesNotExist'
    return out
