"""``python manage.py sqlq_consume [--queue-name NAME] [options]``: a consumer of the project's
queue, with the options of ``sqlq consume`` (defaults from ``settings.SQLQ['consumer']``),
after importing each installed application's ``tasks`` module.

``--queue-name NAME`` consumes instead the sqlq queue of the Tasks framework's queue ``NAME``
(one of the ``QUEUES`` of a ``SqlqBackend``; see :mod:`sqlq.contrib.django._queues`), which
runs only the framework's calls enqueued to that queue. One consumer serves one queue: a sqlq
consumer's workers claim from one queue, and a process per queue is what keeps a busy queue
from delaying another (each with its own ``--workers``)."""
from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sqlq.cli._common import CliError
from sqlq.cli.consume import (
    add_consume_options,
    configure_logging,
    patch_for_greenlets,
    run_consumer,
)
from sqlq.contrib._consume import apply_consumer_settings

from ..._queues import DEFAULT_QUEUE_NAME

#: Django's own ``-v`` is its verbosity (2 or 3 mean debug logging here too).
VERBOSE_FLAGS = ('-V', '--verbose')


class Command(BaseCommand):  # type: ignore[misc]
    help = ("Run a consumer of the project's sqlq queue (settings.SQLQ) until stopped. "
            'SIGINT/SIGTERM stop gracefully (a second one stops at once); SIGHUP restarts.')

    def add_arguments(self, parser: CommandParser) -> None:
        from ... import queue_config
        add_consume_options(parser, VERBOSE_FLAGS)
        parser.add_argument('-A', '--disable-autoload', action='store_true',
                            help="do not import each installed app's tasks module")
        parser.add_argument('--queue-name', default=DEFAULT_QUEUE_NAME, metavar='NAME',
                            help="the Tasks framework's queue to consume (one of a SqlqBackend's "
                            "QUEUES; default %(default)r: the project's queue, with its sqlq "
                            'tasks); run one consumer per queue name')
        try:
            consumer = queue_config().consumer
            apply_consumer_settings(parser, consumer, "SQLQ['consumer']")
        except Exception as exc:  # reported by handle() (and by the system check)
            self._settings_error: Any = exc

    def handle(self, *args: Any, **options: Any) -> None:
        error = getattr(self, '_settings_error', None)
        if error is not None:
            raise CommandError(str(error))
        ns = argparse.Namespace(**options)
        if not ns.verbose and not ns.quiet:
            ns.verbose = options.get('verbosity', 1) >= 2
            ns.quiet = options.get('verbosity', 1) == 0
        try:
            patch_for_greenlets(ns)
            # As sqlq consume does, unless settings.LOGGING configured the sqlq logger.
            if ns.logfile or not logging.getLogger('sqlq').handlers:
                configure_logging(ns)
            queue = prepare(autoload=not ns.disable_autoload, queue_name=ns.queue_name)
            status = run_consumer(queue, ns)
        except CliError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        if status:
            raise CommandError('the consumer stopped with status %d' % status,
                               returncode=status)


def prepare(autoload: bool = True, queue_name: str = DEFAULT_QUEUE_NAME) -> Any:
    """The queue to consume with every task registered: each installed app's ``tasks`` module
    imported (unless not ``autoload``), and the tasks of Django's Tasks framework bound to
    it when ``settings.TASKS`` uses :class:`~sqlq.contrib.django.SqlqBackend`. The queue is
    the project's for ``queue_name`` ``'default'``, else that framework queue's (CommandError
    if no SqlqBackend allows it). Django's database connections opened meanwhile are closed:
    forked workers must not share them."""
    from django.db import connections
    from django.utils.module_loading import autodiscover_modules

    from ... import get_queue
    if queue_name == DEFAULT_QUEUE_NAME:
        queue = get_queue()
    else:
        queue = _framework_queue(queue_name)
    if autoload:
        autodiscover_modules('tasks')
    bind_tasks_backends()
    connections.close_all()
    return queue


def _framework_queue(queue_name: str) -> Any:
    """The sqlq queue of the Tasks framework's ``queue_name``, its runner registered."""
    from django.conf import settings

    from ..._queues import NoSiblingQueue, backend_queue_names, queue_for
    aliases, names = backend_queue_names(getattr(settings, 'TASKS', None))
    if not aliases:
        raise CommandError('--queue-name %r: settings.TASKS has no SqlqBackend, whose queues '
                           'it names' % queue_name)
    if names is not None and queue_name not in names:
        raise CommandError('--queue-name %r is in no SqlqBackend\'s QUEUES (%s)'
                           % (queue_name, ', '.join(sorted(map(str, names)))))
    try:
        queue = queue_for(queue_name)
    except NoSiblingQueue as exc:
        raise CommandError(str(exc)) from None
    from ...backend import runner_for
    runner_for(queue)
    return queue


def bind_tasks_backends() -> None:
    r"""Create the Tasks framework's backends that are :class:`SqlqBackend`\ s (creating one
    registers, on the project's queue, the task that runs the framework's tasks)."""
    from django.conf import settings

    from ..._queues import backend_queue_names
    aliases, _ = backend_queue_names(getattr(settings, 'TASKS', None))
    if aliases:
        from ...backend import task_backends
        for alias in aliases:
            task_backends[alias]
