"""sqlq for Flask applications: a queue configured from ``app.config``, tasks that run inside
the application's context, and ``flask sqlq consume``.

::

    from flask import Flask, current_app
    from sqlq.contrib.flask import Sqlq

    sqlq = Sqlq()                       # or Sqlq(app)

    @sqlq.task(retries=2)
    def send_welcome(user_id):
        current_app.logger.info(...)    # the app context is pushed around each run

    def create_app():
        app = Flask(__name__)
        app.config['SQLQ_FILENAME'] = '/var/lib/myapp/queue.sqlite3'
        sqlq.init_app(app)
        return app

then ``flask --app myapp sqlq consume -w 4`` (``sqlq consume``'s options).

Configuration (``app.config``): ``SQLQ_FILENAME`` (the queue's SQLite file; default
``queue.sqlite3`` in the app's instance folder), or ``SQLQ_URL`` for a Redis server;
``SQLQ_NAME`` (default: the app's name); ``SQLQ_IMMEDIATE`` (default False: tasks run at call
time, in the caller's context, for tests); ``SQLQ_OPTIONS`` (other queue options:
``result_ttl``, ``serializer``...); ``SQLQ_CONSUMER`` (defaults for ``flask sqlq consume``:
``{'workers': 4, 'worker_type': 'thread'}``, huey's names). A queue file that is the SQLite file
of ``SQLALCHEMY_DATABASE_URI`` is refused (two copies of SQLite in one process lose writes:
see the README, "Storage").

Decorators may be used before ``init_app`` (an application factory): each returns a
:class:`FlaskTask` that becomes the queue's task when ``init_app`` builds the queue.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Optional

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup

from sqlq.contrib._consume import apply_consumer_settings, consumer_parser
from sqlq.contrib._paths import same_file

__all__ = ['Sqlq', 'FlaskTask', 'queue_from_config']


def _sqlite_uri_path(uri: Any) -> Optional[str]:
    """The file of an SQLAlchemy ``sqlite:///path`` URI (None for others and memory)."""
    if not isinstance(uri, str) or not uri.startswith('sqlite'):
        return None
    _, sep, rest = uri.partition(':///')
    path = rest.split('?', 1)[0]
    return path if sep and path and path != ':memory:' else None


def queue_from_config(app: Flask) -> Any:
    """The queue ``app.config`` describes (ValueError if it cannot be used)."""
    from sqlq.queues import RedisQueue, SqliteQueue
    config = app.config
    options: Dict[str, Any] = dict(config.get('SQLQ_OPTIONS') or {})
    options.setdefault('name', config.get('SQLQ_NAME') or app.name)
    options.setdefault('immediate', bool(config.get('SQLQ_IMMEDIATE', False)))
    url = config.get('SQLQ_URL')
    if url:
        if config.get('SQLQ_FILENAME'):
            raise ValueError('give SQLQ_FILENAME (SQLite) or SQLQ_URL (Redis), not both')
        return RedisQueue(url=url, **options)
    filename = config.get('SQLQ_FILENAME')
    if not filename:
        os.makedirs(app.instance_path, exist_ok=True)
        filename = os.path.join(app.instance_path, 'queue.sqlite3')
    filename = os.path.abspath(os.fspath(filename))
    database = _sqlite_uri_path(config.get('SQLALCHEMY_DATABASE_URI'))
    if database is not None:
        if not os.path.isabs(database):  # Flask-SQLAlchemy's convention
            database = os.path.join(app.instance_path, database)
        if same_file(filename, database):
            raise ValueError(
                'SQLQ_FILENAME %r is the SQLite file of SQLALCHEMY_DATABASE_URI. Refused: '
                "SQLAlchemy writes it with Python's sqlite3 module and sqlq with apsw, two "
                "copies of SQLite whose locks do not see each other in one process: their "
                'commits would overwrite each other and tasks would be lost. Give the queue '
                'a file of its own.' % filename)
    return SqliteQueue(filename, **options)


class FlaskTask:
    """A task of a :class:`Sqlq` extension: the queue's task wrapper (calls, ``s``,
    ``schedule``, ``map``...), made once the extension has an application. Each run of its
    function has an application context of its own (a fresh ``g``), except in immediate mode
    when the caller has one (a request): the task then runs in the caller's."""

    def __init__(self, ext: 'Sqlq', func: Callable[..., Any], make: Callable[..., Any]) -> None:
        self._ext = ext
        self._func = func
        self._make = make
        self._wrapper: Any = None
        functools.update_wrapper(self, func)

    def bind(self, queue: Any) -> None:
        ext, func = self._ext, self._func

        @functools.wraps(func)
        def in_app_context(*args: Any, **kwargs: Any) -> Any:
            if queue.immediate and has_app_context():  # run by the caller, in its context
                return func(*args, **kwargs)
            with ext.app.app_context():  # a fresh one per run, as per request
                return func(*args, **kwargs)
        self._wrapper = self._make(queue)(in_app_context)

    @property
    def wrapper(self) -> Any:
        """The queue's task wrapper; RuntimeError before ``init_app``."""
        if self._wrapper is None:
            raise RuntimeError('task %s: the Sqlq extension has no application yet (call '
                               'sqlq.init_app(app) first)' % self._func.__qualname__)
        return self._wrapper

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapper(*args, **kwargs)

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.wrapper, name)

    def __repr__(self) -> str:
        return '<FlaskTask %s>' % self._func.__qualname__


class Sqlq:
    """The Flask extension: ``Sqlq(app)`` or ``Sqlq()`` then ``init_app(app)``."""

    def __init__(self, app: Optional[Flask] = None) -> None:
        self._app: Optional[Flask] = None
        self._queue: Any = None
        self._tasks: List[FlaskTask] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the queue from ``app.config``, bind the tasks declared so far to it, and add
        ``flask sqlq consume``. One application per extension (a second ``init_app`` rebinds
        the tasks to the new application's queue: an application factory in tests)."""
        consumer_settings = app.config.get('SQLQ_CONSUMER') or {}
        apply_consumer_settings(consumer_parser('check'), consumer_settings, 'SQLQ_CONSUMER')
        queue = queue_from_config(app)
        if self._queue is not None:
            self._queue.close()
        self._app, self._queue = app, queue
        for task in self._tasks:
            task.bind(queue)
        app.extensions['sqlq'] = self
        app.cli.add_command(sqlq_group)

    @property
    def app(self) -> Flask:
        if self._app is None:
            raise RuntimeError('the Sqlq extension has no application yet (init_app)')
        return self._app

    @property
    def queue(self) -> Any:
        """The application's queue (RuntimeError before ``init_app``)."""
        if self._queue is None:
            raise RuntimeError('the Sqlq extension has no application yet (init_app)')
        return self._queue

    def _declare(self, func: Callable[..., Any], make: Callable[..., Any]) -> FlaskTask:
        task = FlaskTask(self, func, make)
        self._tasks.append(task)
        if self._queue is not None:
            task.bind(self._queue)
        return task

    def task(self, **options: Any) -> Callable[[Callable[..., Any]], FlaskTask]:
        """``@sqlq.task(retries=..., ...)``: the queue's ``task`` decorator, in app context."""
        return lambda func: self._declare(func, lambda queue: queue.task(**options))

    def periodic_task(self, validate_datetime: Callable[..., bool], **options: Any
                      ) -> Callable[[Callable[..., Any]], FlaskTask]:
        """``@sqlq.periodic_task(crontab(...))``, in app context."""
        return lambda func: self._declare(
            func, lambda queue: queue.periodic_task(validate_datetime, **options))

    def lock_task(self, lock_name: str, ttl: Optional[float] = None) -> Any:
        return self.queue.lock_task(lock_name, ttl)


def consume_command(ctx: Any) -> None:
    """``flask sqlq consume [options]``: ``sqlq consume`` for the application's queue."""
    from sqlq.cli._common import CliError
    from sqlq.cli.consume import configure_logging, patch_for_greenlets, run_consumer
    ext = current_app.extensions.get('sqlq')
    if ext is None:
        raise click.UsageError('the application has no Sqlq extension (Sqlq(app))')
    parser = consumer_parser(ctx.command_path)
    apply_consumer_settings(parser, current_app.config.get('SQLQ_CONSUMER') or {},
                            'SQLQ_CONSUMER')
    args = parser.parse_args(ctx.args)
    try:
        patch_for_greenlets(args)
        configure_logging(args)
        status = run_consumer(ext.queue, args)
    except CliError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.exit(status)


def _command_group() -> Any:
    """``flask sqlq``: a group of one command, ``consume``, whose options argparse parses
    (they are ``sqlq consume``'s: ``--help`` passes through to it)."""
    group = AppGroup('sqlq', help='sqlq task queue commands.')
    group.command('consume', add_help_option=False,
                  context_settings={'ignore_unknown_options': True, 'allow_extra_args': True},
                  help="Run a consumer of the application's queue (sqlq consume's options; "
                       '--help lists them).')(click.pass_context(consume_command))
    return group


#: ``flask sqlq``, added to each application's CLI by ``init_app``.
sqlq_group: Any = _command_group()
