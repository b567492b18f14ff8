"""The inspection commands of ``sqlq``: ``stats``, ``pending``, ``scheduled``, ``running``,
``failed`` look at a queue's stored state; ``requeue``, ``purge``, ``revoke`` and ``vacuum``
repair it.

Every command takes the queue (``module.attribute``) first and ``--json`` for scripts; the
output is rendered by ``_format``.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, List, Optional

from . import _format
from ._common import EXIT_NOT_FOUND, CliError, load_queue, positive_int


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
        return positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('must be a positive integer, not %r' % text) from None


def add_inspection_commands(commands: Any) -> None:
    """The subcommands that look at (and repair) a queue's stored state."""
    def command(name: str, help: str, description: str, listing: bool = False,
                full: bool = False) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help,
                                                           description=description)
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


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(_format.to_json(data) if args.json else text)


def cmd_stats(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    stats = queue.stats()
    owners = _format.owners_of(queue.running()) if stats.get('running') else {}
    _emit(args, _format.stats_json(stats, owners), _format.stats_table(stats, owners))
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    scheduled = args.command == 'scheduled'
    tasks = queue.scheduled(args.limit) if scheduled else queue.pending(args.limit)
    if args.json:
        _emit(args, [_format.task_json(t, queue.utc) for t in tasks], '')
    elif not tasks:
        print('no %s tasks' % args.command)
    else:
        print(_format.tasks_table(tasks, queue.utc, args.full, eta=scheduled))
    return 0


def cmd_running(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    items = queue.running()
    if args.json:
        _emit(args, [_format.running_json(i, queue.utc) for i in items], '')
    elif not items:
        print('no running tasks')
    else:
        print(_format.running_table(items, args.full))
    return 0


def cmd_failed(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    items = queue.failed(args.limit)
    if args.json:
        _emit(args, [_format.failed_json(i) for i in items], '')
    elif not items:
        print('no failed tasks')
    else:
        print(_format.failed_table(items, args.full))
    return 0


def _plural(n: int, word: str) -> str:
    return '%d %s%s' % (n, word, '' if n == 1 else 's')


def _check_ids_or_all(args: argparse.Namespace) -> None:
    if args.all == bool(args.ids):
        args.subparser.error('give dead-letter ids or --all (not both)' if args.all
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


def cmd_requeue(args: argparse.Namespace) -> int:
    _check_ids_or_all(args)
    queue = load_queue(args.queue)
    ids = _dead_letter_ids(args, queue)
    count = queue.requeue_failed(ids)
    _emit(args, {'requeued': count, 'ids': ids},
          'requeued %s' % _plural(count, 'dead letter'))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    _check_ids_or_all(args)
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
    human_size = _format.human_size
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


#: Each inspection command's name -> the function that runs it (exit status).
COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    'stats': cmd_stats,
    'pending': cmd_tasks,
    'scheduled': cmd_tasks,
    'running': cmd_running,
    'failed': cmd_failed,
    'requeue': cmd_requeue,
    'purge': cmd_purge,
    'revoke': cmd_revoke,
    'vacuum': cmd_vacuum,
}
