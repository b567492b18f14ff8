"""sqlq for Django projects, as ``huey.contrib.djhuey`` is huey's.

Add ``'sqlq.contrib.django'`` to ``INSTALLED_APPS``, describe the queue in ``settings.SQLQ``
(optional: every key has a default), decorate functions in each app's ``tasks.py``::

    from sqlq.contrib.django import task, db_task, on_commit_task, periodic_task

and run ``python manage.py sqlq_consume`` (``run_huey`` is accepted too). The settings::

    SQLQ = {
        'name': 'myproject',                  # default 'sqlq'
        'filename': BASE_DIR / 'queue.sqlite3',  # default: beside an SQLite default database
        'immediate': False,                   # default: DEBUG (tasks run at call time)
        'consumer': {'workers': 4, 'worker_type': 'thread'},  # sqlq_consume's defaults
        # or a Redis server: 'url': 'redis://localhost:6379/0'; any other queue option
        # ('result_ttl', 'serializer', 'utc'...) is passed to the queue.
    }

``SQLQ`` may also be a queue object. The queue is built once, when first used (a decorator,
:func:`get_queue`), from the settings. It never shares a file with a Django SQLite database
(that is refused: see :mod:`sqlq.contrib.django._config`); to enqueue only if the caller's
transaction commits, use :func:`on_commit_task`. A backend for Django's Tasks framework
(``django.tasks``, or the ``django-tasks`` backport) is :class:`SqlqBackend`.
"""
from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue
    from sqlq.wrapper import TaskWrapper

    from ._config import QueueConfig

__all__ = ['get_queue', 'task', 'periodic_task', 'db_task', 'db_periodic_task', 'lock_task',
           'on_commit_task', 'close_db', 'OnCommitTask', 'queue_config']

_lock = threading.Lock()
_queue: Optional['Queue'] = None


def queue_config() -> 'QueueConfig':
    """The queue ``settings.SQLQ`` describes (ImproperlyConfigured if it is not usable)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    from ._config import ConfigError, resolve
    try:
        return resolve(getattr(settings, 'SQLQ', None), getattr(settings, 'DATABASES', {}),
                       bool(getattr(settings, 'DEBUG', False)),
                       getattr(settings, 'BASE_DIR', None))
    except ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def get_queue() -> 'Queue':
    """The project's queue, built from ``settings.SQLQ`` when first asked for."""
    global _queue
    queue = _queue
    if queue is None:
        with _lock:
            if _queue is None:
                _queue = queue_config().build()
            queue = _queue
    return queue


def _reset_queue() -> None:
    """Forget the queue and its siblings (tests that change ``settings.SQLQ``); closes their
    storage."""
    global _queue
    from ._queues import reset
    reset()
    with _lock:
        queue, _queue = _queue, None
    if queue is not None:
        queue.close()


# -- decorators -------------------------------------------------------------------------------
def task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], 'TaskWrapper[..., Any]']:
    """``@task(retries=..., ...)``: the queue's ``task`` decorator."""
    return get_queue().task(*args, **kwargs)


def periodic_task(*args: Any, **kwargs: Any
                  ) -> Callable[[Callable[..., Any]], 'TaskWrapper[..., Any]']:
    """``@periodic_task(crontab(...))``: the queue's ``periodic_task`` decorator."""
    return get_queue().periodic_task(*args, **kwargs)


def lock_task(lock_name: str, ttl: Optional[float] = None) -> Any:
    """``@lock_task('name')`` (or ``with lock_task('name'):``): the queue's task lock."""
    return get_queue().lock_task(lock_name, ttl)


def close_db(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with Django's unusable or expired database connections closed before and
    after it runs (``close_old_connections``, as Django does around each request), so that a
    long-lived worker thread never runs a task on a connection that died or outlived
    ``CONN_MAX_AGE``. Nothing is closed in immediate mode, where the task runs in the caller's
    request."""
    from django.db import close_old_connections

    @functools.wraps(func)
    def inner(*args: Any, **kwargs: Any) -> Any:
        immediate = get_queue().immediate
        if not immediate:
            close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            if not immediate:
                close_old_connections()
    return inner


def _with_close_db(decorate: Callable[[Callable[..., Any]], 'TaskWrapper[..., Any]'],
                   func: Callable[..., Any]) -> 'TaskWrapper[..., Any]':
    wrapper = decorate(close_db(func))
    wrapper.call_local = func  # type: ignore[method-assign]  # as djhuey: no closing
    return wrapper


def db_task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], 'TaskWrapper[..., Any]']:
    """``@task`` for functions that use Django's database: see :func:`close_db`."""
    return lambda func: _with_close_db(task(*args, **kwargs), func)


def db_periodic_task(*args: Any, **kwargs: Any
                     ) -> Callable[[Callable[..., Any]], 'TaskWrapper[..., Any]']:
    """``@periodic_task`` for functions that use Django's database: see :func:`close_db`."""
    return lambda func: _with_close_db(periodic_task(*args, **kwargs), func)


class OnCommitTask:
    """What :func:`on_commit_task` returns: calling it enqueues the call when the current
    database transaction commits (at once outside a transaction), and returns the call's
    result handle now. A rolled-back transaction enqueues nothing. ``.task`` is the plain
    task (its ``s``, ``schedule``, ``map`` enqueue at once); ``call_local`` runs the function
    here."""

    def __init__(self, wrapper: 'TaskWrapper[..., Any]', func: Callable[..., Any],
                 using: Optional[str] = None) -> None:
        self.task = wrapper
        self.using = using
        self.call_local = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from django.db import transaction
        invocation = self.task.s(*args, **kwargs)  # checks the arguments now
        queue = self.task.queue
        transaction.on_commit(functools.partial(queue.enqueue, invocation), using=self.using)
        return queue.enqueuer.handle(invocation)

    def __repr__(self) -> str:
        return '<OnCommitTask %s>' % self.task.registered_name


def on_commit_task(*args: Any, using: Optional[str] = None,
                   **kwargs: Any) -> Callable[[Callable[..., Any]], OnCommitTask]:
    """``@on_commit_task(...)``: a :func:`db_task` whose calls are enqueued by
    ``transaction.on_commit`` (of database ``using``): only if, and once, the caller's
    transaction commits. The options are ``task``'s."""
    def decorator(func: Callable[..., Any]) -> OnCommitTask:
        return OnCommitTask(_with_close_db(task(*args, **kwargs), func), func, using)
    return decorator


#: Names that read the queue's attribute of the same name: ``from sqlq.contrib.django import
#: revoke_by_id``, as djhuey exports HUEY's methods.
_QUEUE_ATTRIBUTES = frozenset([
    'enqueue', 'restore', 'restore_all', 'restore_by_id', 'revoke', 'revoke_all',
    'revoke_by_id', 'is_revoked', 'result', 'scheduled', 'pending', 'on_startup', 'on_shutdown',
    'pre_execute', 'post_execute', 'signal', 'disconnect_signal', 'rate_limit', 'context_task'])


def __getattr__(name: str) -> Any:
    if name == 'SqlqBackend':
        from .backend import SqlqBackend
        return SqlqBackend
    if name in ('queue', 'QUEUE'):
        return get_queue()
    if name in _QUEUE_ATTRIBUTES:
        return getattr(get_queue(), name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
