"""The Django application ``sqlq.contrib.django`` (in ``INSTALLED_APPS``): its management
commands (``sqlq_consume``, ``run_huey``) and a system check of ``settings.SQLQ`` and of the
queues of the ``SqlqBackend`` entries of ``settings.TASKS``."""
from __future__ import annotations

from typing import Any, List

from django.apps import AppConfig
from django.core import checks


class SqlqConfig(AppConfig):  # type: ignore[misc]
    name = 'sqlq.contrib.django'
    label = 'sqlq'
    verbose_name = 'sqlq task queue'

    def ready(self) -> None:
        checks.register(check_settings)


def check_settings(app_configs: Any = None, **kwargs: Any) -> List[checks.CheckMessage]:
    """``sqlq.E001``: ``settings.SQLQ`` describes no usable queue (a queue file that is one of
    Django's SQLite databases, an unknown consumer option...). Nothing is opened."""
    from django.core.exceptions import ImproperlyConfigured

    from . import queue_config
    try:
        config = queue_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint='See the README, "Django".', obj='settings.SQLQ',
                             id='sqlq.E001')]
    return check_tasks_queues(config.instance is not None)


def check_tasks_queues(sqlq_is_a_queue: bool) -> List[checks.CheckMessage]:
    """``sqlq.E002``: a ``SqlqBackend`` whose ``QUEUES`` name a queue other than
    ``'default'`` (or allow any, ``[]``) while ``settings.SQLQ`` is a queue object, from which
    the other queues' sqlq queues cannot be made. ``sqlq.E003``: ``QUEUES`` that is not a list
    of non-empty strs."""
    from django.conf import settings

    from ._queues import DEFAULT_QUEUE_NAME, backend_queue_names
    tasks: Any = getattr(settings, 'TASKS', None)
    errors: List[checks.CheckMessage] = []
    aliases, _ = backend_queue_names(tasks)
    for alias in aliases:
        queues = tasks[alias].get('QUEUES', [DEFAULT_QUEUE_NAME])
        where = "TASKS[%r]['QUEUES']" % alias
        if not isinstance(queues, (list, tuple, set, frozenset)):
            errors.append(checks.Error('%s must be a list of queue names, not %r'
                                       % (where, queues), obj=where, id='sqlq.E003'))
            continue
        bad = [name for name in queues if not isinstance(name, str) or not name]
        if bad:
            errors.append(checks.Error(
                '%s has queue names that are not non-empty strings: %s'
                % (where, ', '.join(map(repr, bad))), obj=where, id='sqlq.E003'))
        others = sorted(str(name) for name in queues if name != DEFAULT_QUEUE_NAME)
        if sqlq_is_a_queue and (others or not queues):
            errors.append(checks.Error(
                '%s allows %s, but settings.SQLQ is a queue object: sqlq cannot make the sqlq '
                "queue of a queue name other than 'default' from it (it makes each from the "
                'SQLQ dict, in the same storage).'
                % (where, ', '.join(map(repr, others)) if others else 'any queue name'),
                hint="Give SQLQ as a dict, or QUEUES ['default']. See the README, \"Django\".",
                obj=where, id='sqlq.E002'))
    return errors
