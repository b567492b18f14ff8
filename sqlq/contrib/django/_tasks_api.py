"""Django's Tasks framework, wherever it comes from: ``django.tasks`` (Django 6.0 and later)
or the ``django-tasks`` backport package (``django_tasks``, for older Djangos). The two have
the same classes; a few names differ (``InvalidTask``/``InvalidTaskError``, where
``normalize_json`` lives). Everything is typed ``Any`` here: neither is type-checked with
sqlq (Django ships no type information), and they must not be told apart by the type
checker.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Optional

__all__ = ['SOURCE', 'BaseTaskBackend', 'Task', 'TaskResult', 'TaskResultStatus', 'TaskError',
           'TaskContext', 'InvalidTask', 'TaskResultDoesNotExist', 'normalize_json',
           'task_backends', 'task_enqueued', 'task_started', 'task_finished']


def _module(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _load() -> Any:
    if _module('django.tasks') is not None:
        source = 'django.tasks'
        json = importlib.import_module('django.utils.json')
    elif _module('django_tasks') is not None:
        source = 'django_tasks'
        json = importlib.import_module('django_tasks.utils')
    else:
        raise ImportError(
            "sqlq's Tasks backend needs Django's Tasks framework: Django 6.0 or later "
            "(django.tasks), or the django-tasks backport (pip install django-tasks)")
    base = importlib.import_module(source + '.base')
    backends = importlib.import_module(source + '.backends.base')
    exceptions = importlib.import_module(source + '.exceptions')
    signals = importlib.import_module(source + '.signals')
    package = importlib.import_module(source)
    invalid = getattr(exceptions, 'InvalidTask', None) or exceptions.InvalidTaskError
    return (source, backends.BaseTaskBackend, base.Task, base.TaskResult,
            base.TaskResultStatus, base.TaskError, base.TaskContext, invalid,
            exceptions.TaskResultDoesNotExist, json.normalize_json, package.task_backends,
            signals.task_enqueued, signals.task_started, signals.task_finished)


SOURCE: str
BaseTaskBackend: Any
Task: Any
TaskResult: Any
TaskResultStatus: Any
TaskError: Any
TaskContext: Any
InvalidTask: Any
TaskResultDoesNotExist: Any
normalize_json: Any
task_backends: Any
task_enqueued: Any
task_started: Any
task_finished: Any

(SOURCE, BaseTaskBackend, Task, TaskResult, TaskResultStatus, TaskError, TaskContext,
 InvalidTask, TaskResultDoesNotExist, normalize_json, task_backends, task_enqueued,
 task_started, task_finished) = _load()
