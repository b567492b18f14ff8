"""The ``sqlq`` command line: ``sqlq consume app.queue [options]`` and the inspection commands
(``stats``, ``pending``, ``scheduled``, ``running``, ``failed``, ``requeue``, ``revoke``,
``purge``, ``vacuum``).

``consume`` accepts huey_consumer's options with the same letters and meanings. Every
inspection command takes the queue (``module.attribute``) first and ``--json`` for scripts;
their output is rendered by ``sqlq.inspect``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from typing import Any, List, Optional

from . import __version__
from ._logging import BackgroundHandler, ConsumerFormatter

EXIT_USAGE = 2


EXIT_NOT_FOUND = 1


class CliError(Exception):
    """A problem the user can fix; reported as one line, exit status 2 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_queue(path: str) -> Any:
    """The Queue object named by ``module.attribute`` (the current directory is importable)."""
    from .api import Queue
    module_name, _, attribute = path.rpartition('.')
    if not module_name or not attribute:
        raise CliError('expected module.attribute (e.g. app.queue), not %r' % path)
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError('cannot import module %r: %s' % (module_name, exc)) from None
    except Exception as exc:
        raise CliError('importing module %r failed: %s: %s'
                       % (module_name, type(exc).__name__, exc)) from None
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise CliError('module %r has no attribute %r' % (module_name, attribute)) from None
    if not isinstance(obj, Queue):
        raise CliError('%s is a %s, not a sqlq queue (SqliteQueue, MemoryQueue, ...)'
                       % (path, type(obj).__name__))
    return obj


def _signal_number(name: str) -> int:
    normalized = name.upper()
    if not normalized.startswith('SIG'):
        normalized = 'SIG' + normalized
    if normalized not in ('SIGINT', 'SIGTERM'):
        raise argparse.ArgumentTypeError('graceful signal must be SIGINT or SIGTERM, not %r'
                                         % name)
    return int(getattr(signal, normalized))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be a positive integer, not %s' % text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be a positive number, not %s' % text)
    return value


class _CommandListFormatter(argparse.HelpFormatter):
    """Keeps each command's help on its name's line (``scheduled`` is the longest name)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = max(self._action_max_length, len('scheduled') + 6)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='sqlq', description='sqlq task queue tools.',
        formatter_class=_CommandListFormatter)
    parser.add_argument('--version', action='version', version='sqlq %s' % __version__)
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True

    consume = commands.add_parser(
        'consume', help='run a consumer for a queue',
        description='Run workers executing the tasks of QUEUE (module.attribute, e.g. '
                    'app.queue) until stopped. SIGINT/SIGTERM stop gracefully (a second one '
                    'stops at once); SIGHUP restarts in place.')
    consume.add_argument('queue', help='the queue object, as module.attribute')
    workers = consume.add_argument_group('workers')
    workers.add_argument('-w', '--workers', type=_positive_int, default=1,
                         help='number of workers (default 1)')
    workers.add_argument('-k', '--worker-type', choices=('thread', 'process', 'greenlet'),
                         default='thread', help='thread (default), process or greenlet '
                         '(greenlet needs the gevent extra)')
    workers.add_argument('-M', '--max-tasks', type=_positive_int, default=None,
                         help='recycle a worker after it ran this many tasks')
    workers.add_argument('-c', '--health-check-interval', type=_positive_float, default=10.0,
                         help='seconds between worker health checks (default 10)')
    workers.add_argument('-C', '--disable-health-check', action='store_true',
                         help='do not restart dead workers')
    sched = consume.add_argument_group('scheduling')
    sched.add_argument('-n', '--no-periodic', action='store_true',
                       help='do not enqueue periodic tasks from this consumer')
    sched.add_argument('-s', '--scheduler-interval', type=_positive_float, default=1.0,
                       help='longest sleep between schedule checks, seconds (default 1; new '
                            'entries wake the scheduler earlier)')
    sched.add_argument('-d', '--initial-delay', type=float, default=0.1,
                       help='accepted for huey compatibility (workers are woken, not polled)')
    sched.add_argument('-m', '--max-delay', type=float, default=10.0,
                       help='accepted for huey compatibility (workers are woken, not polled)')
    sched.add_argument('-b', '--backoff', type=float, default=1.15,
                       help='accepted for huey compatibility (workers are woken, not polled)')
    locks = consume.add_argument_group('locks')
    locks.add_argument('-f', '--flush-locks', action='store_true',
                       help='release the locks of this queue\'s lock_task names at start')
    locks.add_argument('-L', '--extra-locks', default='',
                       help='comma-separated extra lock names to release at start')
    stop = consume.add_argument_group('shutdown')
    stop.add_argument('-t', '--shutdown-timeout', type=_positive_float, default=None,
                      help='seconds a graceful stop waits for running tasks before '
                           'interrupting them (default: wait)')
    stop.add_argument('-g', '--graceful-signal', type=_signal_number, default=None,
                      help='SIGINT or SIGTERM: only that one stops gracefully, the other at '
                           'once (default: both graceful)')
    logs = consume.add_argument_group('logging')
    logs.add_argument('-l', '--logfile', default=None, help='log to this file')
    verbosity = logs.add_mutually_exclusive_group()
    verbosity.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    verbosity.add_argument('-q', '--quiet', action='store_true', help='warnings and errors only')
    logs.add_argument('-S', '--simple', action='store_true', help='simple log format')
    add_inspection_commands(commands)
    return parser


def _dead_letter_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('dead-letter ids are integers, not %r' % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError('dead-letter ids are positive integers, not %s' % text)
    return value


def _limit(text: str) -> int:
    try:
        return _positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('must be a positive integer, not %r' % text) from None


def add_inspection_commands(commands: Any) -> None:
    """The subcommands that look at (and repair) a queue's stored state."""
    def command(name: str, help: str, description: str, listing: bool = False,
                full: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description)
        sub.set_defaults(subparser=sub)
        sub.add_argument('queue', help='the queue object, as module.attribute')
        sub.add_argument('--json', action='store_true',
                         help='print machine-readable JSON to stdout')
        if listing:
            sub.add_argument('--limit', type=_limit, default=None, metavar='N',
                             help='show at most N entries')
        if full:
            sub.add_argument('--full', action='store_true',
                             help='do not truncate long values')
        return sub

    command('stats', 'task counts by state, owners, database size',
            'Pending, scheduled, running (with their owners), failed (dead letters) and '
            'stored results of QUEUE, and the size of its database and WAL files.')
    command('pending', 'list the tasks ready to run',
            'Tasks of QUEUE ready to run, in the order they will run.', listing=True, full=True)
    command('scheduled', 'list the tasks waiting for their eta',
            'Tasks of QUEUE waiting for their eta, soonest first.', listing=True, full=True)
    command('running', 'list the tasks claimed by workers',
            'Tasks of QUEUE claimed by a worker and not finished: owner (host:pid:token), '
            'claimed since, attempts, recoveries after a worker died, and whether the owner '
            'process is alive (? when it runs on another host).', full=True)
    command('failed', 'list the dead letters (tasks that failed for good)',
            'Dead letters of QUEUE, oldest first: tasks that failed for good and messages '
            'that could not be decoded. --full shows whole reasons with tracebacks.',
            listing=True, full=True)
    requeue = command('requeue', 'put dead letters back in the queue',
                      'Put the dead letters with the given ids (see "sqlq failed") back in '
                      'QUEUE as ready tasks. Nothing is requeued if any id is unknown.')
    _add_dead_letter_selection(requeue, 'requeue')
    revoke = command('revoke', 'revoke pending, scheduled or running tasks by task id',
                     'Revoke tasks of QUEUE by task id: a revoked task is skipped when it '
                     'comes up (a running one if it runs again). Nothing is revoked if any id '
                     'is not pending, scheduled or running.')
    revoke.add_argument('task_ids', nargs='+', metavar='TASK_ID', help='task id')
    revoke.add_argument('--once', action='store_true',
                        help='skip only the next run of each task')
    purge = command('purge', 'delete dead letters',
                    'Delete the dead letters with the given ids from QUEUE (or --all of them, '
                    'without asking). Nothing is deleted if any id is unknown.')
    _add_dead_letter_selection(purge, 'delete')
    command('vacuum', 'reclaim unused space in the database file',
            'Rebuild the database of QUEUE to reclaim free space; prints its size before '
            'and after.')


def _add_dead_letter_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument('ids', nargs='*', type=_dead_letter_id, metavar='ID',
                        help='dead-letter id')
    parser.add_argument('--all', action='store_true', help='%s every dead letter' % verb)


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler: logging.Handler
    if args.logfile:
        handler = logging.FileHandler(args.logfile)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsumerFormatter(simple=args.simple))
    root = logging.getLogger()
    # Written from a background thread: a task's start line must not delay the task.
    root.handlers[:] = [BackgroundHandler(handler)]
    root.setLevel(level)


def consume(args: argparse.Namespace) -> int:
    from .consumer import Consumer
    if args.worker_type == 'greenlet':
        try:
            from gevent import monkey
        except ImportError:
            raise CliError("greenlet workers need gevent: pip install 'sqlq[gevent]'") from None
        monkey.patch_all()
    configure_logging(args)
    queue = load_queue(args.queue)
    consumer = Consumer(
        queue, workers=args.workers, worker_type=args.worker_type,
        periodic=not args.no_periodic, initial_delay=args.initial_delay,
        backoff=args.backoff, max_delay=args.max_delay,
        scheduler_interval=args.scheduler_interval,
        check_worker_health=not args.disable_health_check,
        health_check_interval=args.health_check_interval, flush_locks=args.flush_locks,
        extra_locks=[name.strip() for name in args.extra_locks.split(',') if name.strip()],
        max_tasks=args.max_tasks, shutdown_timeout=args.shutdown_timeout)
    consumer.graceful_signal = args.graceful_signal
    return consumer.run()


# -- inspection commands -----------------------------------------------------------------------
def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    from .inspect import to_json
    print(to_json(data) if args.json else text)


def cmd_stats(args: argparse.Namespace) -> int:
    from . import inspect
    queue = load_queue(args.queue)
    stats = queue.stats()
    owners = inspect.owners_of(queue.running()) if stats.get('running') else {}
    _emit(args, inspect.stats_json(stats, owners), inspect.stats_table(stats, owners))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from . import inspect
    queue = load_queue(args.queue)
    scheduled = args.command == 'scheduled'
    tasks = queue.scheduled(args.limit) if scheduled else queue.pending(args.limit)
    if args.json:
        _emit(args, [inspect.task_json(t, queue.utc) for t in tasks], '')
    elif not tasks:
        print('no %s tasks' % args.command)
    else:
        print(inspect.tasks_table(tasks, queue.utc, args.full, eta=scheduled))
    return 0


def cmd_running(args: argparse.Namespace) -> int:
    from . import inspect
    queue = load_queue(args.queue)
    items = queue.running()
    if args.json:
        _emit(args, [inspect.running_json(i, queue.utc) for i in items], '')
    elif not items:
        print('no running tasks')
    else:
        print(inspect.running_table(items, args.full))
    return 0


def cmd_failed(args: argparse.Namespace) -> int:
    from . import inspect
    queue = load_queue(args.queue)
    items = queue.failed(args.limit)
    if args.json:
        _emit(args, [inspect.failed_json(i) for i in items], '')
    elif not items:
        print('no failed tasks')
    else:
        print(inspect.failed_table(items, args.full))
    return 0


def _plural(n: int, word: str) -> str:
    return '%d %s%s' % (n, word, '' if n == 1 else 's')


def _check_ids_or_all(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.all == bool(args.ids):
        parser.error('give dead-letter ids or --all (not both)' if args.all
                     else 'give dead-letter ids or --all')


def _dead_letter_ids(args: argparse.Namespace, queue: Any) -> Optional[List[int]]:
    """The ids to act on (None: all), checked against the stored dead letters."""
    if args.all:
        return None
    ids = list(dict.fromkeys(args.ids))
    known = {item.id for item in queue.failed()}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise CliError('no dead letter with id %s in queue %r (see "sqlq failed %s")'
                       % (', '.join(map(str, unknown)), queue.name, args.queue),
                       EXIT_NOT_FOUND)
    return ids


def cmd_requeue(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_ids_or_all(args, parser)
    queue = load_queue(args.queue)
    ids = _dead_letter_ids(args, queue)
    count = queue.requeue_failed(ids)
    _emit(args, {'requeued': count, 'ids': ids},
          'requeued %s' % _plural(count, 'dead letter'))
    return 0


def cmd_purge(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_ids_or_all(args, parser)
    queue = load_queue(args.queue)
    ids = _dead_letter_ids(args, queue)
    count = queue.purge_failed(ids)
    _emit(args, {'purged': count, 'ids': ids}, 'purged %s' % _plural(count, 'dead letter'))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    ids = list(dict.fromkeys(args.task_ids))
    states = {}
    for task in queue.scheduled():
        states[task.id] = 'scheduled'
    for task in queue.pending():
        states[task.id] = 'pending'
    for item in queue.running():
        if item.task is not None:
            states[item.task.id] = 'running'
    unknown = [i for i in ids if i not in states]
    if unknown:
        raise CliError('no pending, scheduled or running task with id %s in queue %r'
                       % (', '.join(unknown), queue.name), EXIT_NOT_FOUND)
    for task_id in ids:
        queue.revoke_by_id(task_id, revoke_once=args.once)
    lines = ['revoked %s%s:' % (_plural(len(ids), 'task'), ' (once)' if args.once else '')]
    lines += ['  %s (%s)' % (i, states[i]) for i in ids]
    _emit(args, {'revoked': [{'id': i, 'state': states[i]} for i in ids], 'once': args.once},
          '\n'.join(lines))
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from .inspect import human_size
    queue = load_queue(args.queue)
    before = queue.stats()
    queue.vacuum()
    after = queue.stats()
    _emit(args, {'db_size_before': before.get('db_size'), 'db_size_after': after.get('db_size'),
                 'wal_size_before': before.get('wal_size'),
                 'wal_size_after': after.get('wal_size')},
          'database size: %s -> %s (WAL %s -> %s)'
          % (human_size(before.get('db_size')), human_size(after.get('db_size')),
             human_size(before.get('wal_size')), human_size(after.get('wal_size'))))
    return 0


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == 'consume':
        return consume(args)
    if args.command == 'stats':
        return cmd_stats(args)
    if args.command in ('pending', 'scheduled'):
        return cmd_tasks(args)
    if args.command == 'running':
        return cmd_running(args)
    if args.command == 'failed':
        return cmd_failed(args)
    if args.command == 'requeue':
        return cmd_requeue(args, args.subparser)
    if args.command == 'purge':
        return cmd_purge(args, args.subparser)
    if args.command == 'revoke':
        return cmd_revoke(args)
    if args.command == 'vacuum':
        return cmd_vacuum(args)
    parser.error('unknown command %r' % args.command)
    return EXIT_USAGE  # pragma: no cover (parser.error exits)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``sqlq`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_command(args, parser)
    except CliError as exc:
        print('sqlq: error: %s' % exc, file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # configuration errors from the queue or consumer
        from .exceptions import SqlqError
        if isinstance(exc, SqlqError):
            print('sqlq: error: %s' % exc, file=sys.stderr)
            return EXIT_USAGE
        raise
