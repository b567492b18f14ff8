"""Process workers under every start method: ``fork``, and ``spawn``/``forkserver`` where
``fork`` is missing (Windows) or unsafe (macOS, whose default is ``spawn``).

A forked worker inherits the consumer's queue, its registered tasks and its logging. A spawned
one starts a fresh interpreter: it imports the queue by the module path where the consumer
found it (:func:`queue_path`: a module attribute, e.g. ``app.queue``, as ``sqlq consume``
names it), and sets up the logging the consumer had, as far as it is sqlq's own
(:func:`logging_spec`: its handlers to a file or to stderr/stdout); the rest of an
application's logging is whatever importing the app module sets up.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import sys
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from ._logging import BackgroundHandler, ConsumerFormatter
from .exceptions import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['START_METHODS', 'default_start_method', 'check_start_method', 'queue_path',
           'logging_spec', 'run_spawned_worker']

START_METHODS = ('fork', 'spawn', 'forkserver')

#: What :func:`logging_spec` captures: the root level, and per handler ``(kind, file name or
#: None, simple format, written in the background)``, kind ``'file'``, ``'stderr'`` or
#: ``'stdout'``.
LoggingSpec = Tuple[int, List[Tuple[str, Optional[str], bool, bool]]]


def default_start_method() -> str:
    """``fork`` on Linux (a worker starts in milliseconds, with the app already imported);
    elsewhere the start method multiprocessing is set to, else ``spawn`` (macOS and Windows
    default to it)."""
    if sys.platform.startswith('linux') and 'fork' in multiprocessing.get_all_start_methods():
        return 'fork'
    return multiprocessing.get_start_method(allow_none=True) or 'spawn'


def check_start_method(method: Optional[str]) -> str:
    """``method`` (None: the default) if this platform has it; ConfigurationError if not."""
    if method is None:
        return default_start_method()
    available = multiprocessing.get_all_start_methods()
    if method not in START_METHODS or method not in available:
        raise ConfigurationError('start_method must be one of %s on this platform, not %r'
                                 % (', '.join(available), method))
    return method


def queue_path(queue: 'Queue') -> str:
    """``'module:attribute'`` of a module-level variable holding ``queue`` (the app module's,
    rather than ``__main__``'s where both hold it); ConfigurationError if none does."""
    found = []
    for name, module_ in list(sys.modules.items()):
        namespace = getattr(module_, '__dict__', None)
        if not isinstance(namespace, dict) or name == '__mp_main__':
            continue
        for attribute, value in list(namespace.items()):
            if value is queue:
                found.append((name == '__main__', name, attribute))
    if not found:
        raise ConfigurationError(
            'process workers started with spawn or forkserver import the queue in each '
            'worker: define %r as a module-level variable of an importable module (e.g. '
            'app.queue), or use the fork start method or thread workers' % (queue,))
    _, module_name, attribute = min(found)
    return '%s:%s' % (module_name, attribute)


def load_queue(path: str) -> 'Queue':
    """The queue at ``'module:attribute'`` (imported if need be)."""
    module_name, _, attribute = path.partition(':')
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    queue: 'Queue' = getattr(module, attribute)
    return queue


def logging_spec() -> LoggingSpec:
    """The consumer process's logging, as far as a spawned worker can set it up again."""
    root = logging.getLogger()
    handlers: List[Tuple[str, Optional[str], bool, bool]] = []
    for handler in root.handlers:
        background = isinstance(handler, BackgroundHandler)
        target = handler.target if isinstance(handler, BackgroundHandler) else handler
        formatter = target.formatter
        simple = isinstance(formatter, ConsumerFormatter) and formatter.simple
        if isinstance(target, logging.FileHandler):
            handlers.append(('file', target.baseFilename, simple, background))
        elif isinstance(target, logging.StreamHandler) and \
                target.stream in (sys.stderr, sys.stdout):
            kind = 'stderr' if target.stream is sys.stderr else 'stdout'
            handlers.append((kind, None, simple, background))
    return root.level, handlers


def _configure_logging(spec: LoggingSpec) -> None:
    level, handlers = spec
    if not handlers:
        return
    made: List[logging.Handler] = []
    for kind, filename, simple, background in handlers:
        handler: logging.Handler
        if kind == 'file' and filename:
            handler = logging.FileHandler(filename)
        else:
            handler = logging.StreamHandler(sys.stderr if kind == 'stderr' else sys.stdout)
        handler.setFormatter(ConsumerFormatter(simple=simple))
        made.append(BackgroundHandler(handler) if background else handler)
    root = logging.getLogger()
    root.handlers[:] = made
    root.setLevel(level)


def run_spawned_worker(path: str, spec: LoggingSpec, stop_event: Any, name: str,
                       max_tasks: Optional[int], shared_state: Any, idle_wait: float,
                       parent_pid: int) -> None:
    """Entry point of a worker process started with ``spawn`` or ``forkserver``: import the
    queue, then run as a forked worker does."""
    from .worker import run_process_worker
    _configure_logging(spec)
    run_process_worker(load_queue(path), stop_event, name, max_tasks, shared_state, idle_wait,
                       parent_pid)
