"""A backend for Django's Tasks framework that runs its tasks on sqlq::

    TASKS = {'default': {'BACKEND': 'sqlq.contrib.django.SqlqBackend',
                         'QUEUES': ['default', 'emails'],
                         'OPTIONS': {'enqueue_on_commit': False, 'retries': 0}}}

``@task`` functions (``django.tasks``, Django 6; or ``django_tasks``, the backport) then
``.enqueue()`` into the sqlq queue of their ``queue_name``, ``manage.py sqlq_consume
[--queue-name NAME]`` runs them (the ``'default'`` queue's beside the project's sqlq tasks),
and ``.get_result(id)`` reads their status from any process.

How the framework's notions map to sqlq's:

* ``queue_name`` must be one of ``QUEUES`` (default ``['default']``; ``[]``: any name) and
  picks the sqlq queue (:mod:`sqlq.contrib.django._queues`): ``'default'`` is the project's
  queue (``settings.SQLQ``), any other name ``N`` a queue ``<SQLQ name>.N`` in the same SQLite
  file or Redis server. Each runs only in the consumers started for it: ``sqlq_consume``
  consumes ``'default'``, ``sqlq_consume --queue-name N`` queue ``N``;
* a call is one sqlq task, :data:`RUNNER_NAME`, on that queue, whose arguments are the
  backend's alias, the function's module path and the call's (JSON) arguments; the result id
  is that task's id (``N:<uuid>`` on a queue ``N`` other than ``'default'``: the id says where
  its record is);
* the call's :class:`TaskResult` lives under ``RECORD_PREFIX + id`` in its queue's data (a
  result: ``result_ttl`` applies). It is written with the task, in one transaction (both or
  neither), then by the worker when the run starts (RUNNING, a worker id added) and ends
  (SUCCESSFUL with the return value, or FAILED with the error; READY again if a retry
  follows);
* ``priority`` (-100..100, higher first) is sqlq's priority; ``run_after`` the task's eta;
* ``OPTIONS``: ``enqueue_on_commit`` (enqueue in ``transaction.on_commit``: the returned result
  has no ``enqueued_at`` and cannot be fetched until the commit), and the sqlq task options
  ``retries``, ``retry_delay``, ``retry_backoff``, ``timeout``, ``expires`` for every call;
* async functions run to completion with ``asgiref``'s ``async_to_sync`` in the worker.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import socket
import traceback
import weakref
from typing import Any, Dict, List, Mapping, Optional

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

from sqlq.options import check_options

from . import close_db, get_queue
from ._queues import NoSiblingQueue, built_queue, queue_for, queue_name_of
from ._queues import result_id as new_result_id
from ._tasks_api import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)

__all__ = ['SqlqBackend', 'RUNNER_NAME', 'RECORD_PREFIX', 'task_backends']

#: The sqlq task that runs the framework's tasks.
RUNNER_NAME = 'sqlq.contrib.django.run_task'
#: Key prefix of a call's record in the queue's data.
RECORD_PREFIX = 'sqlq.django.task:'
#: The sqlq task options ``OPTIONS`` may set for every call.
TASK_OPTIONS = ('retries', 'retry_delay', 'retry_backoff', 'timeout', 'expires')

READY, RUNNING = TaskResultStatus.READY.value, TaskResultStatus.RUNNING.value
FAILED, SUCCESSFUL = TaskResultStatus.FAILED.value, TaskResultStatus.SUCCESSFUL.value

Record = Dict[str, Any]
_runners: 'weakref.WeakKeyDictionary[Any, Any]' = weakref.WeakKeyDictionary()


def _iso(value: Optional[_dt.datetime]) -> Optional[str]:
    return None if value is None else value.isoformat()


def _parse(value: Optional[str]) -> Optional[_dt.datetime]:
    return None if value is None else _dt.datetime.fromisoformat(value)


def _epoch(run_after: Optional[_dt.datetime]) -> Optional[float]:
    """``run_after`` as epoch seconds (a naive one is in Django's current time zone)."""
    if run_after is None:
        return None
    if timezone.is_naive(run_after):
        run_after = timezone.make_aware(run_after)
    return run_after.timestamp()


def _resolve(path: str) -> Any:
    """The function at ``path``: a module attribute that is a Task (its function) or the
    function itself; ImportError/AttributeError if there is none."""
    obj = import_string(path)
    return obj.func if isinstance(obj, Task) else obj


def _django_task(record: Record) -> Any:
    """The framework's Task a record describes, without validating it again (the settings
    may have changed since the call was enqueued)."""
    obj = import_string(record['task_path'])
    base = obj if isinstance(obj, Task) else None
    cls = type(base) if base is not None else Task
    values: Dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if base is not None:
            values[field.name] = getattr(base, field.name)
        elif field.default is not dataclasses.MISSING:
            values[field.name] = field.default
    values.update(func=base.func if base is not None else obj, priority=record['priority'],
                  queue_name=record['queue_name'], backend=record['backend'],
                  run_after=_parse(record['run_after']), takes_context=record['takes_context'])
    task = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(task, name, value)
    return task


def _task_result(record: Record) -> Any:
    result = TaskResult(
        task=_django_task(record), id=record['id'], status=TaskResultStatus(record['status']),
        enqueued_at=_parse(record['enqueued_at']), started_at=_parse(record['started_at']),
        finished_at=_parse(record['finished_at']),
        last_attempted_at=_parse(record['last_attempted_at']), args=record['args'],
        kwargs=record['kwargs'], backend=record['backend'],
        errors=[TaskError(exception_class_path=path, traceback=text)
                for path, text in record['errors']],
        worker_ids=list(record['worker_ids']))
    if record['status'] == SUCCESSFUL:
        object.__setattr__(result, '_return_value', record['return_value'])
    return result


def _worker_id() -> str:
    return '%s:%d' % (socket.gethostname(), os.getpid())


def run_task(alias: str, task_path: str, args: List[Any], kwargs: Dict[str, Any],
             task: Any = None, queue: Any = None) -> Any:
    """The body of :data:`RUNNER_NAME` on ``queue`` (default: the project's): run one call of
    a framework task and record its outcome in that queue's data. An exception is raised
    again, so that sqlq logs it and retries if it may."""
    if queue is None:
        queue = get_queue()
    key = RECORD_PREFIX + task.id
    record: Optional[Record] = queue.get(key, peek=True)
    if record is None:  # expired (result_ttl) or deleted: run the call all the same
        record = _new_record(alias, task.id, task_path, None, args, kwargs)
    now = _iso(timezone.now())
    record.update(status=RUNNING, last_attempted_at=now, finished_at=None)
    record['started_at'] = record['started_at'] or now
    record['worker_ids'] = record['worker_ids'] + [_worker_id()]
    queue.put_result(key, record)
    result = _task_result(record)
    task_started.send(sender=SqlqBackend, task_result=result)
    try:
        if record['takes_context']:
            value = result.task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = result.task.call(*args, **kwargs)
        value = normalize_json(value)
    except Exception as exc:
        kind = type(exc)
        record['errors'] = record['errors'] + [
            ('%s.%s' % (kind.__module__, kind.__qualname__),
             ''.join(traceback.format_exception(kind, exc, exc.__traceback__)))]
        if task.options.retries > 0:  # sqlq runs it again: ready to be executed again
            record['status'] = READY
        else:
            record.update(status=FAILED, finished_at=_iso(timezone.now()))
        queue.put_result(key, record)
        task_finished.send(sender=SqlqBackend, task_result=_task_result(record))
        raise
    record.update(status=SUCCESSFUL, finished_at=_iso(timezone.now()), return_value=value)
    queue.put_result(key, record)
    task_finished.send(sender=SqlqBackend, task_result=_task_result(record))
    return None  # the value is in the record; sqlq stores no second copy


def _new_record(alias: str, id: str, task_path: str, django_task: Any, args: List[Any],
                kwargs: Dict[str, Any]) -> Record:
    return {
        'id': id, 'backend': alias, 'task_path': task_path,
        'priority': getattr(django_task, 'priority', 0),
        'queue_name': getattr(django_task, 'queue_name', 'default'),
        'takes_context': getattr(django_task, 'takes_context', False),
        'run_after': _iso(getattr(django_task, 'run_after', None)),
        'status': READY, 'enqueued_at': None, 'started_at': None, 'last_attempted_at': None,
        'finished_at': None, 'args': args, 'kwargs': kwargs, 'return_value': None,
        'errors': [], 'worker_ids': []}


def runner_for(queue: Any) -> Any:
    """The task wrapper of :data:`RUNNER_NAME` on ``queue`` (registered once per queue),
    which records the calls' outcomes in ``queue``'s data."""
    runner = _runners.get(queue)
    if runner is None:
        ref = weakref.ref(queue)  # the runner must not keep its queue alive (tests reset it)

        def run(alias: str, task_path: str, args: List[Any], kwargs: Dict[str, Any],
                task: Any = None) -> Any:
            return run_task(alias, task_path, args, kwargs, task, ref())
        runner = queue.task(name=RUNNER_NAME, context=True)(close_db(run))
        _runners[queue] = runner
    return runner


def _check_options(options: Mapping[str, Any], alias: str) -> Dict[str, Any]:
    unknown = set(options) - set(TASK_OPTIONS) - {'enqueue_on_commit'}
    if unknown:
        raise ImproperlyConfigured(
            'TASKS[%r][\'OPTIONS\'] has unknown key(s) %s; SqlqBackend knows %s'
            % (alias, ', '.join(sorted(unknown)),
               ', '.join(('enqueue_on_commit',) + TASK_OPTIONS)))
    try:
        return check_options({k: v for k, v in options.items() if k in TASK_OPTIONS},
                             'TASKS[%r][\'OPTIONS\']' % alias)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(str(exc)) from None


class SqlqBackend(BaseTaskBackend):  # type: ignore[misc]
    """Django Tasks backend on the project's sqlq queue (see the module's docstring)."""

    #: Marks this backend for ``sqlq_consume`` (which creates it to register its runner).
    sqlq_backend = True
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: Dict[str, Any]) -> None:
        super().__init__(alias, params)
        options = dict(self.options)
        self.enqueue_on_commit = bool(options.get('enqueue_on_commit', False))
        self.task_options = _check_options(options, alias)
        #: The project's queue: the sqlq queue of the queue name 'default'.
        self.queue = get_queue()
        self.runner = runner_for(self.queue)

    def queue_for(self, queue_name: str) -> Any:
        """The sqlq queue of ``queue_name`` (see :mod:`sqlq.contrib.django._queues`)."""
        return self.queue if queue_name == 'default' else queue_for(queue_name)

    def _check_importable(self, task: Any) -> None:
        """The consumer finds the function by its module path: refuse one it could not."""
        try:
            found = _resolve(task.module_path)
        except (ImportError, AttributeError):
            found = None
        if found is not task.func:
            raise InvalidTask('Task function must be importable from its module path %r (a '
                              'module-level function, not shadowed by another name), so that '
                              'the consumer can find it.' % task.module_path)

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        self._check_importable(task)
        try:
            queue = self.queue_for(task.queue_name)
        except NoSiblingQueue as exc:
            raise InvalidTask(str(exc)) from None
        args = normalize_json(list(args))
        kwargs = normalize_json(dict(kwargs))
        invocation = runner_for(queue).s(
            self.alias, task.module_path, args, kwargs, priority=task.priority or None,
            eta=_epoch(task.run_after), id=new_result_id(task.queue_name), **self.task_options)
        record = _new_record(self.alias, invocation.id, task.module_path, task, args, kwargs)
        key = RECORD_PREFIX + invocation.id

        def write() -> None:
            record['enqueued_at'] = _iso(timezone.now())
            if queue.immediate:  # the task runs inside enqueue: announce it first
                queue.put_result(key, record)
                task_enqueued.send(type(self), task_result=_task_result(record))
                queue.enqueue(invocation)
                return
            def store() -> None:
                queue.put_result(key, record)
                queue.enqueue(invocation)
            queue.atomically(store)
            task_enqueued.send(type(self), task_result=_task_result(record))

        if self.enqueue_on_commit:
            from django.db import transaction
            transaction.on_commit(write)
            if record['enqueued_at'] is None:  # in a transaction: not written yet
                return _task_result(record)
        else:
            write()
        return _task_result(queue.get(key, peek=True) or record)

    def get_result(self, result_id: str) -> Any:
        """The call's result, read from the queue its id names: one of ``QUEUES``, or any
        (``QUEUES`` of ``[]``; a queue this process has not opened is opened for the read
        only, so that ids made up by a client cannot make it keep queues open)."""
        result_id = str(result_id)
        name = queue_name_of(result_id)
        if self.queues and name not in self.queues:
            raise TaskResultDoesNotExist(result_id)
        key = RECORD_PREFIX + result_id
        try:
            queue = self.queue if name == 'default' else built_queue(name)
            if queue is not None:
                record = queue.get(key, peek=True)
            else:
                transient = queue_for(name, keep=False)
                try:
                    record = transient.get(key, peek=True)
                finally:
                    transient.close()
        except NoSiblingQueue:
            raise TaskResultDoesNotExist(result_id) from None
        if record is None:
            raise TaskResultDoesNotExist(result_id)
        return _task_result(record)
