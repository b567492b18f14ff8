"""The ``SQLQ`` setting: which queue it describes, checked before anything is opened.

Kept free of Django's settings object: :func:`resolve` takes the values it needs, so the rules
are tested on plain dictionaries. :mod:`sqlq.contrib.django` calls it with ``settings.SQLQ``,
``settings.DATABASES``, ``settings.DEBUG`` and ``settings.BASE_DIR``.

The rules that keep tasks from being lost (README, "Django"):

* the queue's file defaults to a file *beside* the default database when that is SQLite
  (``db.sqlite3`` -> ``db-queue.sqlite3``), else to ``BASE_DIR/sqlq.sqlite3``;
* a queue file that is the file of a Django SQLite database (``DATABASES[...]['NAME']`` or its
  ``TEST`` name; compared after resolving symbolic links, and by inode when both exist) is
  refused: Django's ``sqlite3`` and sqlq's apsw are two copies of SQLite, whose locks do not
  see each other within one process, so one's commits would overwrite the other's.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Type

from sqlq.contrib._consume import check_consumer_settings
from sqlq.contrib._paths import beside, same_file

__all__ = ['QueueConfig', 'resolve', 'sqlite_database_files', 'default_filename', 'ConfigError']


class ConfigError(ValueError):
    """The ``SQLQ`` setting cannot be used (raised as Django's ImproperlyConfigured)."""


class QueueConfig(NamedTuple):
    """A queue to build: its class, its keyword arguments, and the consumer's defaults."""

    queue_class: Type[Any]
    kwargs: Dict[str, Any]
    consumer: Dict[str, Any]
    #: The queue object itself, when the setting is one.
    instance: Any = None

    def build(self) -> Any:
        if self.instance is not None:
            return self.instance
        return self.queue_class(**self.kwargs)


_SQLITE_ENGINES = ('sqlite3', 'spatialite')


def _sqlite_path(name: Any) -> Optional[str]:
    """The file an SQLite ``NAME`` opens, or None for an in-memory database."""
    if name is None:
        return None
    text = str(os.fspath(name))
    if not text or text == ':memory:' or 'mode=memory' in text:
        return None
    if text.startswith('file:'):  # a URI (OPTIONS {'uri': True}), as SQLite reads it
        path = text[len('file:'):].partition('?')[0]
        if path.startswith('//'):  # file://host/path
            path = path[2:]
            path = path[path.index('/'):] if '/' in path else ''
        return os.path.abspath(path) if path and path != ':memory:' else None
    return os.path.abspath(text)


def sqlite_database_files(databases: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """``(alias, absolute path)`` of every SQLite file in Django's ``DATABASES`` (their
    ``TEST`` names too)."""
    found: List[Tuple[str, str]] = []
    for alias, config in (databases or {}).items():
        if not isinstance(config, Mapping):
            continue
        engine = str(config.get('ENGINE', ''))
        if not any(part in engine for part in _SQLITE_ENGINES):
            continue
        path = _sqlite_path(config.get('NAME'))
        if path:
            found.append((alias, path))
        test_name = (config.get('TEST') or {}).get('NAME')
        path = _sqlite_path(test_name)
        if path:
            found.append(('%s (TEST)' % alias, path))
    return found


def default_filename(databases: Mapping[str, Any], base_dir: Any) -> str:
    """Where the queue's file goes when the setting names none: beside the default database
    if that is an SQLite file (``db.sqlite3`` -> ``db-queue.sqlite3``), else in ``BASE_DIR``."""
    default = dict(sqlite_database_files(databases)).get('default')
    if default:
        return beside(default)
    if base_dir:
        return os.path.join(os.fspath(base_dir), 'sqlq.sqlite3')
    raise ConfigError(
        "SQLQ needs a 'filename' (the queue's SQLite file, not one of DATABASES) or a Redis "
        "'url': the default database is not an SQLite file and settings has no BASE_DIR to "
        'put sqlq.sqlite3 in.')


def check_filename(filename: str, databases: Mapping[str, Any]) -> None:
    """ConfigError if ``filename`` is the file of one of Django's SQLite databases."""
    path = os.path.abspath(os.fspath(filename))
    for alias, db_path in sqlite_database_files(databases):
        if same_file(path, db_path):
            raise ConfigError(
                "SQLQ's queue file %r is the SQLite file of Django's DATABASES[%r]. Refused: "
                "Django writes it with Python's sqlite3 module and sqlq with apsw, two copies "
                'of SQLite whose locks do not see each other in one process, so their commits '
                'would overwrite each other and tasks would be lost without an error. Give the '
                "queue its own file (leave 'filename' out to get %r), and enqueue after "
                "Django's commit with on_commit_task (see the README, \"Django\")."
                % (filename, alias, beside(db_path)))


def _queue_classes() -> Dict[str, Type[Any]]:
    from sqlq.queues import MemoryQueue, RedisQueue, SqliteQueue
    return {'SqliteQueue': SqliteQueue, 'RedisQueue': RedisQueue, 'MemoryQueue': MemoryQueue}


def _queue_class(value: Any) -> Type[Any]:
    from sqlq.api import Queue
    if isinstance(value, str):
        classes = _queue_classes()
        name = value.rpartition('.')[2]
        if value in classes or (value.startswith('sqlq.') and name in classes):
            return classes[name]
        from django.utils.module_loading import import_string
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigError("SQLQ['queue_class']: %s" % exc) from None
    if not (isinstance(value, type) and issubclass(value, Queue)):
        raise ConfigError("SQLQ['queue_class'] must be a sqlq queue class (SqliteQueue, "
                          'RedisQueue...) or its dotted path, not %r' % (value,))
    return value


def resolve(setting: Any, databases: Mapping[str, Any], debug: bool = False,
            base_dir: Any = None) -> QueueConfig:
    """The queue the ``SQLQ`` setting describes; ConfigError if it is not usable.

    ``setting``: a dict (``name``, ``filename`` or ``url``, ``immediate`` (default: ``debug``),
    ``consumer`` (``sqlq_consume``'s defaults), ``queue_class``, ``connection`` (Redis
    options, as djhuey's), and any other keyword argument of the queue class), None (all
    defaults), or a queue object.
    """
    from sqlq.api import Queue
    from sqlq.queues import RedisQueue, SqliteQueue
    if isinstance(setting, Queue):
        filename = getattr(setting, 'filename', None)
        if filename is not None:
            check_filename(filename, databases)
        return QueueConfig(type(setting), {}, {}, setting)
    if setting is None:
        setting = {}
    if not isinstance(setting, Mapping):
        raise ConfigError('settings.SQLQ must be a dict or a sqlq queue, not %s'
                          % type(setting).__name__)
    config = dict(setting)
    consumer = config.pop('consumer', None) or {}
    try:
        check_consumer_settings(consumer, "SQLQ['consumer']")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    connection = config.pop('connection', None) or {}
    if not isinstance(connection, Mapping):
        raise ConfigError("SQLQ['connection'] must be a dict of Redis connection options")
    config.update(connection)
    if 'queue_class' in config:
        queue_class = _queue_class(config.pop('queue_class'))
    elif connection or 'url' in config or 'connection_pool' in config:
        queue_class = RedisQueue
    else:
        queue_class = SqliteQueue
    config.setdefault('immediate', bool(debug))
    config.setdefault('name', 'sqlq')
    if issubclass(queue_class, SqliteQueue):
        if 'url' in config:
            raise ConfigError("SQLQ has both a Redis 'url' and an SQLite queue class")
        filename = config.get('filename')
        if filename is None:
            filename = default_filename(databases, base_dir)
        filename = os.fspath(filename)
        check_filename(filename, databases)
        config['filename'] = filename
    elif 'filename' in config:
        raise ConfigError("SQLQ['filename'] is for SQLite queues, not %s" % queue_class.__name__)
    return QueueConfig(queue_class, config, dict(consumer))
