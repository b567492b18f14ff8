"""The inspection commands of ``sqlq``: ``stats``, ``pending``, ``scheduled``, ``running``,
``failed`` look at a queue's stored state; ``requeue``, ``purge``, ``revoke`` and ``vacuum``
repair it.

Every command takes the queue (``module.attribute``) first and ``--json`` for scripts; the
output is rendered by ``_format``.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from . import _format
from ._common import EXIT_NOT_FOUND, CliError, load_queue, positive_float, positive_int
from ._progress import Progress, wanted

#: Listings show this many entries unless --limit says otherwise (0: all).
DEFAULT_LIMIT = 50
#: requeue --all and purge --all work in transactions of this many dead letters.
CHUNK = 1000


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
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError('must be 0 or a positive integer, not %r' % text)
    return value


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--progress', action='store_true', default=None,
                       help='show progress on stderr (default: when stderr is a terminal)')
    group.add_argument('--no-progress', action='store_false', dest='progress',
                       help='never show progress')


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
            sub.add_argument('--limit', type=_limit, default=DEFAULT_LIMIT, metavar='N',
                             help='show at most N entries (default %d; 0: all)'
                                  % DEFAULT_LIMIT)
            sub.add_argument('--offset', type=_limit, default=0, metavar='N',
                             help='skip the first N entries (the next page)')
        if full:
            sub.add_argument('--full', action='store_true',
                             help='do not truncate long values')
        return sub

    stats = command('stats', 'task counts by state, owners, database size',
                    'Pending, scheduled, running (with their owners), failed (dead letters) '
                    'and stored results of QUEUE, the database it uses, and the size of its '
                    'database and WAL files.')
    stats.add_argument('--watch', type=positive_float, nargs='?', const=2.0, default=None,
                       metavar='SECONDS', help='refresh every SECONDS (default 2) until '
                       'interrupted; with --json, one JSON object per line')
    stats.add_argument('--count', type=positive_int, default=None, metavar='N',
                       help='with --watch: stop after N refreshes')
    command('pending', 'list the tasks ready to run',
            'Tasks of QUEUE ready to run, in the order they will run.', listing=True, full=True)
    command('scheduled', 'list the tasks waiting for their eta',
            'Tasks of QUEUE waiting for their eta, soonest first.', listing=True, full=True)
    command('running', 'list the tasks claimed by workers',
            'Tasks of QUEUE claimed by a worker and not finished: owner (host:pid:token), '
            'claimed since, attempts, recoveries after a worker died, and whether the owner '
            'process is alive (? when it runs on another host).', listing=True, full=True)
    command('failed', 'list the dead letters (tasks that failed for good)',
            'Dead letters of QUEUE, oldest first: tasks that failed for good and messages '
            'that could not be decoded. --full shows whole reasons with tracebacks.',
            listing=True, full=True)
    requeue = command('requeue', 'put dead letters back in the queue',
                      'Put the dead letters with the given ids (see "sqlq failed") back in '
                      'QUEUE as ready tasks. Nothing is requeued if any id is unknown. --all '
                      'works in transactions of %d.' % CHUNK)
    _add_dead_letter_selection(requeue, 'requeue')
    add_progress_option(requeue)
    revoke = command('revoke', 'revoke pending, scheduled or running tasks by task id',
                     'Revoke tasks of QUEUE by task id: a revoked task is skipped when it '
                     'comes up (a running one if it runs again). Nothing is revoked if any id '
                     'is not pending, scheduled or running.')
    revoke.add_argument('task_ids', nargs='+', metavar='TASK_ID', help='task id')
    revoke.add_argument('--once', action='store_true',
                        help='skip only the next run of each task')
    purge = command('purge', 'delete dead letters',
                    'Delete the dead letters with the given ids from QUEUE (or --all of them, '
                    'without asking, in transactions of %d). Nothing is deleted if any id '
                    'is unknown.' % CHUNK)
    _add_dead_letter_selection(purge, 'delete')
    add_progress_option(purge)
    vacuum = command('vacuum', 'reclaim unused space in the database file',
                     'Rebuild the database of QUEUE to reclaim free space; prints its size '
                     'before and after.')
    add_progress_option(vacuum)


def _add_dead_letter_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument('ids', nargs='*', type=_dead_letter_id, metavar='ID',
                        help='dead-letter id')
    parser.add_argument('--all', action='store_true', help='%s every dead letter' % verb)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(_format.to_json(data) if args.json else text)


def _stats_once(args: argparse.Namespace, queue: Any) -> None:
    stats = queue.stats()
    owners = _format.owners_of(queue.running()) if stats.get('running') else {}
    data = _format.stats_json(stats, owners)
    if args.json and args.watch is not None:  # JSON lines: one object per refresh
        print(_format.json_line(data))
    else:
        _emit(args, data, _format.stats_table(stats, owners))


def cmd_stats(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    if args.watch is None:
        _stats_once(args, queue)
        return 0
    clear = not args.json and sys.stdout.isatty()
    shown = 0
    try:
        while True:
            if clear:
                sys.stdout.write('\x1b[H\x1b[2J')  # home, clear: redraw in place
                print('every %gs: sqlq stats %s  (Ctrl-C to stop)\n' % (args.watch,
                                                                         args.queue))
            _stats_once(args, queue)
            sys.stdout.flush()
            shown += 1
            if args.count is not None and shown >= args.count:
                return 0
            time.sleep(args.watch)  # the refresh period (a timer, not a synchronisation)
    except KeyboardInterrupt:
        return 0


def _page_note(args: argparse.Namespace, shown: int, total: int, what: str) -> None:
    """Say on stderr which part of a bounded listing was shown, and how to see more."""
    if not shown and not args.offset:
        return
    if args.offset or (args.limit and shown < total):
        first, last = args.offset + 1, args.offset + shown
        more = '' if last >= total else '; more with --offset %d (--limit 0: all)' % last
        print('showing %d-%d of %d %s%s' % (first, last, total, what, more), file=sys.stderr)


def _bounds(args: argparse.Namespace) -> tuple[Optional[int], int]:
    return (args.limit or None), args.offset


def cmd_tasks(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    scheduled = args.command == 'scheduled'
    tasks = queue.scheduled(*_bounds(args)) if scheduled else queue.pending(*_bounds(args))
    if args.json:
        _emit(args, [_format.task_json(t, queue.utc) for t in tasks], '')
    elif not tasks:
        print('no %s tasks' % args.command)
    else:
        print(_format.tasks_table(tasks, queue.utc, args.full, eta=scheduled))
    total = queue.scheduled_count() if scheduled else queue.pending_count()
    _page_note(args, len(tasks), total, '%s tasks' % args.command)
    return 0


def cmd_running(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    every = queue.running()
    limit, offset = _bounds(args)
    items = every[offset:None if limit is None else offset + limit]
    if args.json:
        _emit(args, [_format.running_json(i, queue.utc) for i in items], '')
    elif not items:
        print('no running tasks')
    else:
        print(_format.running_table(items, args.full))
    _page_note(args, len(items), len(every), 'running tasks')
    return 0


def cmd_failed(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    items = queue.failed(*_bounds(args))
    if args.json:
        _emit(args, [_format.failed_json(i) for i in items], '')
    elif not items:
        print('no failed tasks')
    else:
        print(_format.failed_table(items, args.full))
    _page_note(args, len(items), queue.dead_letter_count(), 'failed tasks (dead letters)')
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
    unknown = [i for i in ids if queue.storage.dead_letter(i) is None]
    if unknown:
        raise CliError('no dead letter with id %s in queue %r (see "sqlq failed %s")'
                       % (', '.join(map(str, unknown)), queue.name, args.queue),
                       EXIT_NOT_FOUND)
    return ids


def _every_dead_letter(args: argparse.Namespace, queue: Any,
                       act: Callable[[List[int]], int], label: str) -> int:
    """``act`` on every dead letter, CHUNK at a time (each chunk one transaction: other
    writers wait a chunk at most), with progress; how many were acted on."""
    total = queue.dead_letter_count()
    done = 0
    with Progress(label, total, wanted(args), unit=' dead letters') as progress:
        while done < total:  # bounded by the count at the start: new ones stay
            ids = [letter.id for letter in queue.storage.dead_letters(min(CHUNK, total - done))]
            if not ids:
                break
            done += act(ids)
            progress.update(done)
    return done


def cmd_requeue(args: argparse.Namespace) -> int:
    _check_ids_or_all(args)
    queue = load_queue(args.queue)
    ids = _dead_letter_ids(args, queue)
    if ids is None:
        count = _every_dead_letter(args, queue, queue.requeue_failed, 'requeue')
    else:
        count = queue.requeue_failed(ids)
    _emit(args, {'requeued': count, 'ids': ids},
          'requeued %s' % _plural(count, 'dead letter'))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    _check_ids_or_all(args)
    queue = load_queue(args.queue)
    ids = _dead_letter_ids(args, queue)
    if ids is None:
        count = _every_dead_letter(args, queue, queue.purge_failed, 'purge')
    else:
        count = queue.purge_failed(ids)
    _emit(args, {'purged': count, 'ids': ids}, 'purged %s' % _plural(count, 'dead letter'))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    ids = list(dict.fromkeys(args.task_ids))
    states = {}
    for task_id in ids:  # an index look-up each (Queue.status), not a listing
        location = queue.status(task_id).location
        if location in _LOCATIONS:
            states[task_id] = _LOCATIONS[location]
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


#: Where a task that can be revoked is: its state as ``revoke`` reports it.
_LOCATIONS = {'ready': 'pending', 'scheduled': 'scheduled', 'claimed': 'running'}


def _vacuum(args: argparse.Namespace, queue: Any, before: Dict[str, Any]) -> None:
    """``queue.vacuum()`` with progress: VACUUM writes the rebuilt database through the
    write-ahead log, so the log's growth against the pages in use tells how far it got."""
    path = before.get('database')
    page = before.get('page_size') or 0
    expected = page * max((before.get('page_count') or 0) - (before.get('freelist_count') or 0),
                          1)
    if not wanted(args) or not page or not isinstance(path, str) or not os.path.exists(path):
        queue.vacuum()
        return
    finished = threading.Event()
    with Progress('vacuum', expected // 1024, True, unit=' KiB') as progress:
        def watch() -> None:
            while not finished.wait(0.2):  # a display refresh, bounded by the vacuum
                try:
                    progress.update(min(os.stat(path + '-wal').st_size, expected) // 1024)
                except OSError:
                    pass
        watcher = threading.Thread(target=watch, name='sqlq-vacuum-progress', daemon=True)
        watcher.start()
        try:
            queue.vacuum()
        finally:
            finished.set()
            watcher.join(5)
        progress.update(expected // 1024)


def cmd_vacuum(args: argparse.Namespace) -> int:
    human_size = _format.human_size
    queue = load_queue(args.queue)
    before = queue.stats()
    _vacuum(args, queue, before)
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
