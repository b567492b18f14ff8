"""``python manage.py sqlq_consume [options]``: a consumer of the project's queue, with the
options of ``sqlq consume`` (defaults from ``settings.SQLQ['consumer']``), after importing
each installed application's ``tasks`` module."""
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
            queue = prepare(autoload=not ns.disable_autoload)
            status = run_consumer(queue, ns)
        except CliError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        if status:
            raise CommandError('the consumer stopped with status %d' % status,
                               returncode=status)


def prepare(autoload: bool = True) -> Any:
    """The project's queue with every task registered: each installed app's ``tasks`` module
    imported (unless not ``autoload``), and the tasks of Django's Tasks framework bound to
    it when ``settings.TASKS`` uses :class:`~sqlq.contrib.django.SqlqBackend`. Django's
    database connections opened meanwhile are closed: forked workers must not share them."""
    from django.db import connections
    from django.utils.module_loading import autodiscover_modules

    from ... import get_queue
    queue = get_queue()
    if autoload:
        autodiscover_modules('tasks')
    bind_tasks_backends()
    connections.close_all()
    return queue


def bind_tasks_backends() -> None:
    r"""Create the Tasks framework's backends that are :class:`SqlqBackend`\ s (creating one
    registers, on the project's queue, the task that runs the framework's tasks)."""
    from django.conf import settings
    from django.utils.module_loading import import_string
    for alias, params in (getattr(settings, 'TASKS', None) or {}).items():
        try:
            backend_class = import_string(params['BACKEND'])
        except (ImportError, KeyError, TypeError):
            continue  # reported by the framework when the backend is used
        if getattr(backend_class, 'sqlq_backend', False):
            from ...backend import task_backends
            task_backends[alias]
