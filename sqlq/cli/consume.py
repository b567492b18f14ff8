"""``sqlq consume app.queue [options]``: run a consumer, with huey_consumer's options (same
letters, same meanings)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Tuple

from .._logging import BackgroundHandler, ConsumerFormatter
from ._common import CliError, load_queue, positive_float, positive_int


def _signal_number(name: str) -> int:
    normalized = name.upper()
    if not normalized.startswith('SIG'):
        normalized = 'SIG' + normalized
    if normalized not in ('SIGINT', 'SIGTERM'):
        raise argparse.ArgumentTypeError('graceful signal must be SIGINT or SIGTERM, not %r'
                                         % name)
    return int(getattr(signal, normalized))


def add_consume_command(commands: Any) -> None:
    """The ``consume`` subcommand and its options."""
    consume = commands.add_parser(
        'consume', help='run a consumer for a queue',
        description='Run workers executing the tasks of QUEUE (module.attribute, e.g. '
                    'app.queue) until stopped. SIGINT/SIGTERM stop gracefully (a second one '
                    'stops at once); SIGHUP restarts in place.')
    consume.add_argument('queue', help='the queue object, as module.attribute')
    add_consume_options(consume)


def add_consume_options(consume: Any, verbose: Tuple[str, ...] = ('-v', '--verbose')) -> None:
    """The options of ``sqlq consume`` (all but its QUEUE argument) on ``consume``, an
    argparse parser: also that of ``manage.py sqlq_consume`` and ``flask sqlq consume``, which
    give ``verbose`` other flags (Django's ``-v`` is its verbosity)."""
    workers = consume.add_argument_group('workers')
    workers.add_argument('-w', '--workers', type=positive_int, default=1,
                         help='number of workers (default 1); with -k asyncio, how many '
                         'tasks run at once on the event loop')
    workers.add_argument('-k', '--worker-type',
                         choices=('thread', 'process', 'greenlet', 'asyncio'),
                         default='thread', help='thread (default), process, greenlet (needs '
                         'the gevent extra) or asyncio (one event loop: async def tasks run '
                         'on it, plain ones in a thread pool)')
    workers.add_argument('--start-method', choices=('fork', 'spawn', 'forkserver'),
                         default=None, help='how process workers start (default: fork on '
                         'Linux, spawn elsewhere; a spawned worker imports QUEUE\'s module)')
    workers.add_argument('-M', '--max-tasks', type=positive_int, default=None,
                         help='recycle a worker after it ran this many tasks')
    workers.add_argument('-c', '--health-check-interval', type=positive_float, default=10.0,
                         help='seconds between worker health checks (default 10)')
    workers.add_argument('-C', '--disable-health-check', action='store_true',
                         help='do not restart dead workers')
    sched = consume.add_argument_group('scheduling')
    sched.add_argument('-n', '--no-periodic', action='store_true',
                       help='do not enqueue periodic tasks from this consumer')
    sched.add_argument('-s', '--scheduler-interval', type=positive_float, default=1.0,
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
    stop.add_argument('-t', '--shutdown-timeout', type=positive_float, default=None,
                      help='seconds a graceful stop waits for running tasks before '
                           'interrupting them (default: wait)')
    stop.add_argument('-g', '--graceful-signal', type=_signal_number, default=None,
                      help='SIGINT or SIGTERM: only that one stops gracefully, the other at '
                           'once (default: both graceful)')
    logs = consume.add_argument_group('logging')
    logs.add_argument('-l', '--logfile', default=None, help='log to this file')
    verbosity = logs.add_mutually_exclusive_group()
    verbosity.add_argument(*verbose, action='store_true', help='debug logging')
    verbosity.add_argument('-q', '--quiet', action='store_true', help='warnings and errors only')
    logs.add_argument('-S', '--simple', action='store_true', help='simple log format')


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler: logging.Handler
    if args.logfile:
        try:
            handler = logging.FileHandler(args.logfile)
        except OSError as exc:
            raise CliError('cannot open log file %r: %s' % (args.logfile, exc.strerror or exc)
                           ) from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ConsumerFormatter(simple=args.simple))
    root = logging.getLogger()
    # Written from a background thread: a task's start line must not delay the task.
    root.handlers[:] = [BackgroundHandler(handler)]
    root.setLevel(level)


def patch_for_greenlets(args: argparse.Namespace) -> None:
    """For ``-k greenlet``: gevent's monkey-patching, before the application is imported."""
    if args.worker_type == 'greenlet':
        try:
            from gevent import monkey
        except ImportError:
            raise CliError("greenlet workers need gevent: pip install 'sqlq[gevent]'") from None
        monkey.patch_all()


def consume(args: argparse.Namespace) -> int:
    """Run the consumer the arguments describe until it stops; its exit status."""
    patch_for_greenlets(args)
    configure_logging(args)
    return run_consumer(load_queue(args.queue), args)


def run_consumer(queue: Any, args: argparse.Namespace) -> int:
    """Run a consumer of ``queue`` with the options of :func:`add_consume_options` until it
    stops; its exit status."""
    from ..consumer import Consumer
    consumer = Consumer(
        queue, workers=args.workers, worker_type=args.worker_type,
        periodic=not args.no_periodic, initial_delay=args.initial_delay,
        backoff=args.backoff, max_delay=args.max_delay,
        scheduler_interval=args.scheduler_interval,
        check_worker_health=not args.disable_health_check,
        health_check_interval=args.health_check_interval, flush_locks=args.flush_locks,
        extra_locks=[name.strip() for name in args.extra_locks.split(',') if name.strip()],
        max_tasks=args.max_tasks, shutdown_timeout=args.shutdown_timeout,
        start_method=args.start_method if args.worker_type == 'process' else None)
    consumer.graceful_signal = args.graceful_signal
    return consumer.run()
