"""``sqlq status QUEUE TASK_ID`` and ``sqlq history QUEUE``: a task's status by id, and the
history of finished runs (per-task-name figures with ``--stats``). Both read indexes: their
cost does not grow with the size of the queue."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Optional

from ..storage.types import EMPTY, OUTCOMES
from . import _format
from ._common import EXIT_NOT_FOUND, load_queue, positive_float
from .commands import DEFAULT_LIMIT, _limit

__all__ = ['add_tracking_commands', 'TRACKING_COMMANDS', 'status_json', 'run_json']


def add_tracking_commands(commands: Any) -> None:
    status = commands.add_parser(
        'status', help="a task's state, times, attempts, error, by task id",
        description='Where the task TASK_ID of QUEUE is (scheduled, pending, running) or how '
                    'it ended (succeeded, failed, dead, revoked, expired, canceled), with its '
                    'times, attempts, owner, error and its recorded runs. Exit status 1 if '
                    'the id is unknown.')
    status.add_argument('queue', help='the queue object, as module.attribute')
    status.add_argument('task_id', metavar='TASK_ID', help='task id')
    status.add_argument('--json', action='store_true', help='print machine-readable JSON')
    history = commands.add_parser(
        'history', help='list finished runs, newest first (--stats: figures per task)',
        description='Runs of tasks of QUEUE that ended, newest first: succeeded, failed, '
                    'retried, revoked, expired, canceled (see the history, history_ttl and '
                    'history_max options). --stats: per task name, runs, failures and '
                    'p50/p95 durations over a window.')
    history.add_argument('queue', help='the queue object, as module.attribute')
    history.add_argument('--json', action='store_true', help='print machine-readable JSON')
    history.add_argument('--limit', type=_limit, default=DEFAULT_LIMIT, metavar='N',
                         help='show at most N runs (default %d; 0: all)' % DEFAULT_LIMIT)
    history.add_argument('--before', type=int, default=None, metavar='ID',
                         help='runs older than the run ID (the next page)')
    history.add_argument('--name', default=None, help='only runs of this task name')
    history.add_argument('--task-id', default=None, help='only runs of this task id')
    history.add_argument('--outcome', choices=OUTCOMES, default=None,
                         help='only runs with this outcome')
    history.add_argument('--stats', action='store_true',
                         help='figures per task name instead of runs')
    history.add_argument('--window', type=positive_float, default=3600.0, metavar='SECONDS',
                         help='with --stats: over the last SECONDS (default 3600)')
    history.add_argument('--full', action='store_true', help='do not truncate long values')
    metrics = commands.add_parser(
        'metrics', help='print metrics in the Prometheus text format',
        description='Gauges (pending, scheduled, running, dead letters, database and WAL '
                    'size, heartbeats of consumer and worker processes), counters of '
                    'completed, failed, retried and skipped runs by task name, and a '
                    'histogram of task durations, in the Prometheus text exposition format '
                    '(the dashboard serves the same at /metrics).')
    metrics.add_argument('queue', help='the queue object, as module.attribute')


def _result_text(result: Any) -> Optional[str]:
    return None if result is EMPTY else _format.safe_repr(result)


def run_json(entry: Any) -> Dict[str, Any]:
    return dict(entry._asdict())


def status_json(status: Any) -> Dict[str, Any]:
    task = status.task
    return {
        'id': status.id, 'state': status.state, 'name': status.name,
        'location': status.location,
        'args': None if task is None else list(task.args),
        'kwargs': None if task is None else dict(task.kwargs),
        'enqueued_at': status.enqueued_at, 'started_at': status.started_at,
        'finished_at': status.finished_at, 'eta': status.eta, 'attempts': status.attempts,
        'owner': status.owner, 'error': status.error, 'dead_letter_id': status.dead_letter_id,
        'revoked': status.revoked, 'result': _result_text(status.result),
        'runs': [run_json(run) for run in status.runs],
    }


_duration = _format.duration


def status_text(status: Any, queue_path: str) -> str:
    task = status.task
    rows = [['task', status.id], ['state', status.state + (' (revoke flag set)' if
                                                          status.revoked and
                                                          status.state != 'revoked' else '')]]
    if status.location and status.state not in ('pending', 'scheduled', 'running'):
        rows.append(['stored', status.location])
    rows.append(['name', _format.or_dash(status.name)])
    if task is not None:
        rows.append(['args', _format.call_text(task.args, task.kwargs)])
    rows += [['enqueued', _format.local_time(status.enqueued_at)]]
    if status.eta is not None:
        rows.append(['eta', _format.local_time(status.eta)])
    rows += [['started', _format.local_time(status.started_at)],
             ['finished', _format.local_time(status.finished_at)],
             ['attempts', str(status.attempts)], ['owner', _format.or_dash(status.owner)]]
    result = _result_text(status.result)
    if result is not None and status.error is None:
        rows.append(['result', result])
    if status.dead_letter_id is not None:
        rows.append(['dead letter', '%d (sqlq requeue %s %d)' % (status.dead_letter_id,
                                                                  queue_path,
                                                                  status.dead_letter_id)])
    text = _format.table(['field', 'value'], rows)
    if status.error:
        text += '\n\nerror:\n' + '\n'.join('    ' + line for line in
                                          status.error.rstrip('\n').splitlines())
    if status.runs:
        text += '\n\nruns (newest first):\n' + runs_table(status.runs, full=False)
    return text


def runs_table(runs: List[Any], full: bool) -> str:
    width = None if full else _format.REASON_WIDTH
    return _format.table(
        ['run', 'task id', 'name', 'outcome', 'finished', 'duration', 'attempts', 'error'],
        [[str(r.id), r.key, r.name, r.outcome, _format.local_time(r.finished_at),
          _duration(r.duration), str(r.attempts), _format.truncate(r.error or '', width)]
         for r in runs], right=('run', 'attempts'))


def cmd_status(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    status = queue.status(args.task_id)
    if args.json:
        print(_format.to_json(status_json(status)))
    else:
        print(status_text(status, args.queue))
    return EXIT_NOT_FOUND if status.state == 'unknown' else 0


def figures_json(figures: Any) -> Dict[str, Any]:
    return dict(figures._asdict())


def cmd_history(args: argparse.Namespace) -> int:
    queue = load_queue(args.queue)
    if args.stats:
        figures = queue.task_stats(args.window)
        if args.json:
            print(_format.to_json([figures_json(f) for f in figures]))
        elif not figures:
            print('no runs in the last %gs' % args.window)
        else:
            print(_format.table(
                ['name', 'runs', 'failures', 'p50', 'p95', 'mean', 'outcomes'],
                [[f.name, str(f.runs), str(f.failures), _duration(f.p50), _duration(f.p95),
                  _duration(f.mean), ', '.join('%s %d' % kv for kv in sorted(f.outcomes.items()))]
                 for f in figures], right=('runs', 'failures')))
        return 0
    runs = queue.history(args.limit or None, args.before, args.name, args.task_id,
                         args.outcome)
    if args.json:
        print(_format.to_json([run_json(run) for run in runs]))
    elif not runs:
        print('no finished runs recorded')
    else:
        print(runs_table(runs, args.full))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from ..metrics import exposition
    queue = load_queue(args.queue)
    sys.stdout.write(exposition(queue))
    return 0


TRACKING_COMMANDS: Dict[str, Callable[[argparse.Namespace], int]] = {
    'status': cmd_status,
    'history': cmd_history,
    'metrics': cmd_metrics,
}
