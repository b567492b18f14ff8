"""The sqlq queue of each queue name of Django's Tasks framework (``queue_name``).

* ``'default'`` (the framework's default queue name) is the project's queue,
  ``settings.SQLQ``: the one the plain sqlq tasks (``@task``) run on;
* any other name ``N`` is a sibling of it in the same storage (the same SQLite file, or the
  same Redis server), with the same settings and the name ``<SQLQ name>.N`` (sqlq scopes every
  row, or key, of a queue by its name), consumed by ``manage.py sqlq_consume --queue-name N``.

A call's result id names its queue, so that ``get_result(id)`` reads its record in one place
whatever the settings say now: the id of a call to ``'default'`` is a plain sqlq task id (as
before queues were separate); to another queue, ``N:<uuid>`` (:func:`result_id`,
:func:`queue_name_of`).

A sibling is derived from the ``SQLQ`` dict; when ``SQLQ`` is a queue object there is none to
derive (its constructor's arguments are not known): only ``'default'`` can be used then
(``manage.py check`` says so: ``sqlq.E002``).
"""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional, Set, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue

__all__ = ['DEFAULT_QUEUE_NAME', 'queue_for', 'built_queue', 'sqlq_name', 'result_id',
           'queue_name_of', 'backend_queue_names', 'NoSiblingQueue']

#: The framework's default queue name (``DEFAULT_TASK_QUEUE_NAME``): the project's queue.
DEFAULT_QUEUE_NAME = 'default'

_lock = threading.Lock()
_siblings: Dict[str, 'Queue'] = {}


class NoSiblingQueue(LookupError):
    """A queue name other than ``'default'`` while ``settings.SQLQ`` is a queue object."""


def sqlq_name(project_name: str, queue_name: str) -> str:
    """The sqlq queue name of the framework's ``queue_name``."""
    return project_name if queue_name == DEFAULT_QUEUE_NAME else '%s.%s' % (project_name,
                                                                           queue_name)


def result_id(queue_name: str) -> Optional[str]:
    """A new result id for a call to ``queue_name`` (None: sqlq's own, for ``'default'``)."""
    if queue_name == DEFAULT_QUEUE_NAME:
        return None
    return '%s:%s' % (queue_name, uuid.uuid4())


def queue_name_of(id: str) -> str:
    """The queue name a result id names (a plain id: ``'default'``)."""
    head, sep, _ = id.rpartition(':')
    return head if sep else DEFAULT_QUEUE_NAME


def _build(queue_name: str) -> 'Queue':
    from . import queue_config
    config = queue_config()
    if config.instance is not None:
        raise NoSiblingQueue(
            'queue_name %r has no sqlq queue: settings.SQLQ is a queue object, from which no '
            'sibling queue can be made; give SQLQ as a dict, or use only the queue name %r'
            % (queue_name, DEFAULT_QUEUE_NAME))
    kwargs = dict(config.kwargs)
    kwargs['name'] = sqlq_name(kwargs['name'], queue_name)
    queue: 'Queue' = config.queue_class(**kwargs)
    return queue


def queue_for(queue_name: str, keep: bool = True) -> 'Queue':
    """The sqlq queue of the framework's ``queue_name``, built when first asked for (and kept
    for the process; ``keep=False``: built afresh unless kept already, for the caller to
    close). NoSiblingQueue if there is none (``settings.SQLQ`` is a queue object)."""
    from . import get_queue
    if queue_name == DEFAULT_QUEUE_NAME:
        return get_queue()
    queue = _siblings.get(queue_name)
    if queue is None and not keep:
        return _build(queue_name)
    if queue is None:
        with _lock:
            queue = _siblings.get(queue_name)
            if queue is None:
                queue = _siblings[queue_name] = _build(queue_name)
    return queue


def built_queue(queue_name: str) -> Optional['Queue']:
    """The sibling queue of ``queue_name`` if this process has built it, else None."""
    return _siblings.get(queue_name)


def reset() -> None:
    """Forget and close the sibling queues (with the project's queue, in tests)."""
    with _lock:
        queues = list(_siblings.values())
        _siblings.clear()
    for queue in queues:
        queue.close()


def backend_queue_names(tasks: Any) -> Tuple[List[str], Optional[FrozenSet[str]]]:
    r"""``(aliases, names)`` of the ``settings.TASKS`` backends that are
    :class:`~sqlq.contrib.django.SqlqBackend`\ s: their aliases, and the queue names their
    ``QUEUES`` allow together (None: any name, a ``QUEUES`` of ``[]``)."""
    from django.utils.module_loading import import_string
    aliases: List[str] = []
    names: Optional[Set[str]] = set()
    if not isinstance(tasks, dict):
        return aliases, frozenset()
    for alias, params in tasks.items():
        try:
            backend_class = import_string(params['BACKEND'])
        except (ImportError, KeyError, TypeError):
            continue  # reported by the framework when the backend is used
        if not getattr(backend_class, 'sqlq_backend', False):
            continue
        aliases.append(alias)
        queues = params.get('QUEUES', [DEFAULT_QUEUE_NAME])
        if not isinstance(queues, (list, tuple, set, frozenset)):
            continue  # not a backend the framework can make (sqlq.E003)
        if not queues:
            names = None
        elif names is not None:
            names.update(queues)
    return aliases, None if names is None else frozenset(names)
