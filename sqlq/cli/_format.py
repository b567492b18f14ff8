"""Rendering for the inspection commands of the ``sqlq`` CLI (``stats``, ``pending``, ...).

``commands.py`` parses arguments and talks to the Queue; this module turns what the Queue
returns into plain-text tables for a person or JSON-ready dicts for scripts. Nothing here
changes a queue.
"""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .._time import to_timestamp

ELLIPSIS = '\u2026'
#: Widest a truncated cell gets (``--full`` turns truncation off).
ARGS_WIDTH = 40
REASON_WIDTH = 60
OWNER_WIDTH = 40

STATS_LABELS = (
    ('queue', 'queue'),
    ('database', 'database'),
    ('pending', 'pending'),
    ('scheduled', 'scheduled'),
    ('running', 'running'),
    ('failed', 'failed (dead letters)'),
    ('results', 'results'),
    ('db_size', 'database size'),
    ('wal_size', 'WAL size'),
)
SIZE_KEYS = frozenset(('db_size', 'wal_size'))


# -- cells -------------------------------------------------------------------------------------
def truncate(text: str, width: Optional[int]) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis (None: no limit)."""
    if width is None:
        return text
    text = ' '.join(text.split('\n'))
    if len(text) <= width:
        return text
    return text[:max(width - 1, 0)] + ELLIPSIS


def first_line(text: str) -> str:
    """The last non-empty line of a traceback is the error; otherwise the first line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ''
    if lines[0].startswith('Traceback (most recent call last)'):
        return lines[-1].strip()
    return lines[0].strip()


def human_size(size: Optional[float]) -> str:
    """``1234567`` -> ``'1.2 MiB'``."""
    if size is None:
        return '-'
    value = float(size)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            if unit == 'B':
                return '%d B' % value
            return '%.1f %s' % (value, unit)
        value /= 1024
    raise AssertionError('unreachable')  # pragma: no cover


def duration(seconds: Optional[float]) -> str:
    """``0.0123`` -> ``'12.3 ms'`` (``-`` for None)."""
    if seconds is None:
        return '-'
    if seconds < 0.001:
        return '%.0f \u00b5s' % (seconds * 1e6)
    if seconds < 1:
        return '%.1f ms' % (seconds * 1e3)
    return '%.2f s' % seconds


def local_time(ts: Optional[float]) -> str:
    """Epoch seconds as local ISO time (seconds precision); ``-`` for None."""
    if ts is None:
        return '-'
    return _dt.datetime.fromtimestamp(ts).isoformat(sep=' ', timespec='seconds')


def eta_timestamp(task: Any, utc: bool) -> Optional[float]:
    eta = getattr(task, 'eta', None)
    if eta is None:
        return None
    if isinstance(eta, _dt.datetime):
        return to_timestamp(eta, utc)
    return float(eta)


def call_text(args: Sequence[Any], kwargs: Dict[str, Any]) -> str:
    """``(1, 'a'), {'b': 2}`` -> ``"1, 'a', b=2"``."""
    parts = [_safe_repr(a) for a in args]
    parts.extend('%s=%s' % (k, _safe_repr(v)) for k, v in kwargs.items())
    return ', '.join(parts)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not break the listing
        return '<%s>' % type(value).__name__


def yes_no(value: Optional[bool]) -> str:
    return '?' if value is None else 'yes' if value else 'no'


def or_dash(value: Any) -> str:
    return '-' if value is None else str(value)


# -- tables ------------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          right: Iterable[str] = (), details: Optional[Sequence[str]] = None) -> str:
    """An aligned plain-text table with a header line and a rule under it.

    Columns named in ``right`` are right-aligned (numbers). ``details``, if given, holds one
    text per row, printed under that row indented by four spaces (tracebacks: too wide for a
    column).
    """
    right = set(right)
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values: Sequence[str]) -> str:
        out = []
        for i, value in enumerate(values):
            if headers[i] in right:
                out.append(value.rjust(widths[i]))
            else:
                out.append(value.ljust(widths[i]))
        return '  '.join(out).rstrip()

    lines = [line(list(headers)), line(['-' * w for w in widths])]
    for n, row in enumerate(cells):
        lines.append(line(row))
        if details is not None and details[n]:
            lines.extend(('    ' + text).rstrip() for text in details[n].splitlines())
            lines.append('')
    while lines[-1] == '':
        lines.pop()
    return '\n'.join(lines)


def to_json(value: Any) -> str:
    """JSON text; values JSON can't hold (task arguments of any type) become their repr."""
    return json.dumps(value, indent=2, default=_safe_repr, ensure_ascii=False)


def json_line(value: Any) -> str:
    """:func:`to_json` on one line (JSON lines)."""
    return json.dumps(value, default=_safe_repr, ensure_ascii=False)


safe_repr = _safe_repr


# -- stats -------------------------------------------------------------------------------------
def owners_of(running: Iterable[Any]) -> Dict[str, int]:
    """How many running tasks each owner (``host:pid:token``) holds."""
    owners: Dict[str, int] = {}
    for item in running:
        owners[item.owner] = owners.get(item.owner, 0) + 1
    return owners


def stats_json(stats: Dict[str, Any], owners: Dict[str, int]) -> Dict[str, Any]:
    data = dict(stats)
    data['running_owners'] = owners
    return data


def stats_table(stats: Dict[str, Any], owners: Dict[str, int]) -> str:
    rows: List[List[str]] = []
    for key, label in STATS_LABELS:
        if key not in stats:
            continue
        value = stats[key]
        if key in SIZE_KEYS:
            text = human_size(value)
        else:
            text = or_dash(value)
        rows.append([label, text])
        if key == 'running':
            rows.extend(['  by %s' % owner, str(n)] for owner, n in sorted(owners.items()))
    for key in sorted(k for k in stats if k not in dict(STATS_LABELS)):
        value = stats[key]
        text = human_size(value) if key.endswith('_size') else or_dash(value)
        rows.append([key.replace('_', ' '), text])
    return table(['figure', 'value'], rows)


# -- task listings -----------------------------------------------------------------------------
def task_json(task: Any, utc: bool) -> Dict[str, Any]:
    return {
        'id': task.id,
        'name': task.registered_name,
        'args': list(task.args),
        'kwargs': dict(task.kwargs),
        'priority': task.priority,
        'eta': eta_timestamp(task, utc),
        'retries': task.retries,
    }


def tasks_table(tasks: Sequence[Any], utc: bool, full: bool, eta: bool) -> str:
    width = None if full else ARGS_WIDTH
    headers = ['id', 'name', 'args']
    if eta:
        headers.append('eta')
    headers += ['priority', 'retries']
    rows = []
    for task in tasks:
        row = [task.id, task.registered_name, truncate(call_text(task.args, task.kwargs), width)]
        if eta:
            row.append(local_time(eta_timestamp(task, utc)))
        row += [or_dash(task.priority), str(task.retries)]
        rows.append(row)
    return table(headers, rows, right=('priority', 'retries'))


def _task_fields(task: Any, id_key: str) -> Dict[str, Any]:
    """The task's id (under ``id_key``), name and arguments; None each if undecodable."""
    if task is None:
        return {id_key: None, 'name': None, 'args': None, 'kwargs': None}
    return {id_key: task.id, 'name': task.registered_name, 'args': list(task.args),
            'kwargs': dict(task.kwargs)}


def running_json(item: Any, utc: bool) -> Dict[str, Any]:
    return {
        'row_id': item.row_id,
        **_task_fields(item.task, 'id'),
        'owner': item.owner,
        'claimed_at': item.claimed_at,
        'attempts': item.attempts,
        'recoveries': item.recoveries,
        'owner_alive': item.owner_alive,
    }


def running_table(items: Sequence[Any], full: bool) -> str:
    args_width = None if full else ARGS_WIDTH
    owner_width = None if full else OWNER_WIDTH
    rows = []
    for item in items:
        task = item.task
        rows.append([
            str(item.row_id),
            task.id if task is not None else '-',
            task.registered_name if task is not None else '(undecodable)',
            truncate(call_text(task.args, task.kwargs), args_width) if task is not None else '',
            truncate(item.owner, owner_width),
            local_time(item.claimed_at),
            str(item.attempts),
            str(item.recoveries),
            yes_no(item.owner_alive),
        ])
    return table(['row', 'id', 'name', 'args', 'owner', 'since', 'attempts', 'recoveries',
                  'alive'], rows, right=('row', 'attempts', 'recoveries'))


def failed_json(item: Any) -> Dict[str, Any]:
    return {
        'id': item.id,
        **_task_fields(item.task, 'task_id'),
        'reason': item.reason,
        'failed_at': item.failed_at,
        'enqueued_at': item.enqueued_at,
        'attempts': item.attempts,
    }


def failed_table(items: Sequence[Any], full: bool) -> str:
    rows = []
    for item in items:
        task = item.task
        rows.append([
            str(item.id),
            task.id if task is not None else '-',
            task.registered_name if task is not None else '(undecodable)',
            local_time(item.failed_at),
            str(item.attempts),
        ] + ([] if full else [truncate(first_line(item.reason), REASON_WIDTH)]))
    headers = ['id', 'task id', 'name', 'failed at', 'attempts']
    if full:  # the whole reason (error and traceback) under each row
        return table(headers, rows, right=('id', 'attempts'),
                     details=[item.reason.rstrip('\n') or '(no reason)' for item in items])
    return table(headers + ['reason'], rows, right=('id', 'attempts'))
