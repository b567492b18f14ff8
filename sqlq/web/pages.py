"""The dashboard's HTML: whole pages and the fragments the pages re-fetch to stay live.

Everything a queue holds (task names, arguments, results, errors, owner ids) is escaped here,
on the server, with :func:`html.escape`; the pages carry no inline script or style (the
Content-Security-Policy forbids them) and the browser script only swaps fragments built here.
"""
from __future__ import annotations

import datetime as _dt
from html import escape
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import urlencode

from ..cli._format import (
    call_text,
    duration,
    first_line,
    human_size,
    local_time,
    safe_repr,
    truncate,
)
from ..storage.types import EMPTY, OUTCOMES
from .chart import throughput_svg

__all__ = ['page', 'overview_fragment', 'list_fragment', 'task_fragment', 'NAV', 'LISTS']

#: The navigation: (path, label).
NAV = (('/', 'Overview'), ('/tasks/pending', 'Pending'), ('/tasks/scheduled', 'Scheduled'),
       ('/tasks/running', 'Running'), ('/tasks/failed', 'Failed'),
       ('/tasks/history', 'History'))
LISTS = ('pending', 'scheduled', 'running', 'failed', 'history')
ARGS_WIDTH = 60


def h(value: Any) -> str:
    """``value`` as escaped HTML text (None: a dash)."""
    return '&ndash;' if value is None else escape(str(value), quote=True)


def when(ts: Optional[float]) -> str:
    return h(local_time(ts)) if ts is not None else '&ndash;'


def seconds(value: Optional[float]) -> str:
    return '&ndash;' if value is None else h(duration(value)).replace(' ', '&nbsp;')


def task_link(task_id: Optional[str]) -> str:
    if not task_id:
        return '&ndash;'
    return '<a class="id" href="/task/%s">%s</a>' % (h(_quote(task_id)), h(task_id))


def _quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe='')


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = '',
          empty: str = 'nothing here') -> str:
    """A table of already-escaped cells."""
    rows = list(rows)
    if not rows:
        return '<p class="empty">%s</p>' % h(empty)
    head = ''.join('<th>%s</th>' % h(x) for x in headers)
    body = ''.join('<tr>%s</tr>' % ''.join('<td>%s</td>' % c for c in row) for row in rows)
    return '<table class="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (
        h(cls), head, body)


def form(action: str, csrf: str, fields: Dict[str, str], label: str, cls: str = '',
         confirm: Optional[str] = None, next_url: str = '/') -> str:
    """A POST form with the CSRF token (``confirm``: asked before it is sent)."""
    hidden = ''.join('<input type="hidden" name="%s" value="%s">' % (h(k), h(v))
                     for k, v in list(fields.items()) + [('csrf', csrf), ('next', next_url)])
    extra = ' data-confirm="%s"' % h(confirm) if confirm else ''
    return ('<form method="post" action="%s" class="inline"%s>%s'
            '<button type="submit" class="%s">%s</button></form>'
            % (h(action), extra, hidden, h(cls), h(label)))


def page(title: str, queue_name: str, database: str, current: str, body: str) -> str:
    nav = ''.join('<a href="%s"%s>%s</a>' % (h(path), ' class="current"' if path == current
                                              else '', h(label)) for path, label in NAV)
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>%s &middot; sqlq %s</title>'
            '<link rel="icon" href="data:,">'
            '<link rel="stylesheet" href="/static/style.css">'
            '<script src="/static/app.js" defer></script></head><body>'
            '<header><span class="brand">sqlq</span> <span class="queue">%s</span> '
            '<span class="db">%s</span><nav>%s<a href="/metrics">Metrics</a></nav></header>'
            '<main><h1>%s</h1>%s</main></body></html>'
            % (h(title), h(queue_name), h(queue_name), h(database), nav, h(title), body))


# -- overview -------------------------------------------------------------------------------------
def overview_fragment(data: Dict[str, Any]) -> str:
    counts = data['counts']
    cards = ''.join(
        '<a class="card %s" href="%s"><span class="n" id="count-%s">%s</span>'
        '<span class="label">%s</span></a>'
        % (h(key), h(link), h(key), h(counts.get(key, 0)), h(label))
        for key, label, link in (('pending', 'pending', '/tasks/pending'),
                                 ('scheduled', 'scheduled', '/tasks/scheduled'),
                                 ('running', 'running', '/tasks/running'),
                                 ('failed', 'failed (dead letters)', '/tasks/failed'),
                                 ('results', 'stored results', '/tasks/history')))
    hour = data['last_hour']
    rate = '%.1f%%' % (100.0 * hour['failures'] / hour['runs']) if hour['runs'] else '&ndash;'
    summary = ('<p class="summary">Last hour: <b id="runs-hour">%d</b> runs, '
               '<b id="failures-hour">%d</b> failed (failure rate %s); database %s, WAL %s.</p>'
               % (hour['runs'], hour['failures'], rate, h(human_size(counts.get('db_size'))),
                  h(human_size(counts.get('wal_size')))))
    chart = throughput_svg(data['minutes'])
    owners = table(
        ['process (owner)', 'host', 'pid', 'started', 'last heartbeat', 'claimed', 'alive'],
        [[h(o['id']), h(o['host']), h(o['pid']), when(o['started_at']),
          when(o['heartbeat_at']), h(o['claimed']), h({True: 'yes', False: 'no',
                                                       None: '?'}[o['alive']])]
         for o in data['owners']], cls='owners', empty='no consumer has sent a heartbeat')
    figures = table(
        ['task', 'runs', 'failures', 'p50', 'p95', 'mean'],
        [['<a href="/tasks/history?%s">%s</a>' % (h(urlencode({'name': f['name']})),
                                                  h(f['name'])),
          h(f['runs']), h(f['failures']), seconds(f['p50']), seconds(f['p95']),
          seconds(f['mean'])] for f in data['tasks']], cls='figures',
        empty='no run ended in the last hour')
    return ('<div class="cards">%s</div>%s<h2>Runs per minute (last hour)</h2>%s'
            '<h2>Tasks (last hour)</h2>%s<h2>Consumers and workers</h2>%s'
            % (cards, summary, chart, figures, owners))


# -- lists ----------------------------------------------------------------------------------------
def search_form(state: str, params: Dict[str, str], task_names: Sequence[str]) -> str:
    options = ''.join('<option value="%s">' % h(n) for n in task_names)
    outcome = ''
    if state == 'history':
        choices = ''.join('<option value="%s"%s>%s</option>' % (
            h(o), ' selected' if params.get('outcome') == o else '', h(o)) for o in OUTCOMES)
        outcome = ('<select name="outcome"><option value="">any outcome</option>%s</select>'
                   % choices)
    return ('<form method="get" class="search" action="/tasks/%s">'
            '<input type="search" name="q" placeholder="task id or task name" value="%s" '
            'list="task-names" id="search"><datalist id="task-names">%s</datalist>%s'
            '<button type="submit">Search</button></form>'
            % (h(state), h(params.get('q', '')), options, outcome))


def list_fragment(state: str, rows: List[Dict[str, Any]], csrf: str, here: str,
                  pager: Dict[str, Any]) -> str:
    if state in ('pending', 'scheduled'):
        headers = ['task id', 'name', 'arguments'] + (['eta'] if state == 'scheduled' else []) \
            + ['priority', 'retries', '']
        body = [[task_link(r['id']), h(r['name']), h(truncate(r['args'], ARGS_WIDTH))]
                + ([when(r['eta'])] if state == 'scheduled' else [])
                + [h(r['priority']), h(r['retries']),
                   form('/action/revoke', csrf, {'task_id': r['id']}, 'revoke', 'small',
                        next_url=here)] for r in rows]
    elif state == 'running':
        headers = ['task id', 'name', 'arguments', 'owner', 'since', 'attempts', 'alive']
        body = [[task_link(r['id']), h(r['name']), h(truncate(r['args'] or '', ARGS_WIDTH)),
                 h(r['owner']), when(r['claimed_at']), h(r['attempts']),
                 h({True: 'yes', False: 'no', None: '?'}[r['owner_alive']])] for r in rows]
    elif state == 'failed':
        headers = ['dead letter', 'task id', 'name', 'failed at', 'attempts', 'reason', '']
        body = [[h(r['dead_letter_id']), task_link(r['id']), h(r['name'] or '(undecodable)'),
                 when(r['failed_at']), h(r['attempts']),
                 '<span title="%s">%s</span>' % (h(r['reason']),
                                                  h(truncate(first_line(r['reason']), 70))),
                 form('/action/requeue', csrf, {'ids': str(r['dead_letter_id'])}, 'requeue',
                      'small requeue', next_url=here)
                 + form('/action/purge', csrf, {'ids': str(r['dead_letter_id'])}, 'purge',
                        'small danger purge', confirm='Delete this dead letter for good?',
                        next_url=here)] for r in rows]
    else:
        headers = ['run', 'task id', 'name', 'outcome', 'finished', 'duration', 'waited',
                   'attempts', 'error']
        body = [[h(r['run']), task_link(r['id']), h(r['name']),
                 '<span class="outcome %s">%s</span>' % (h(r['outcome']), h(r['outcome'])),
                 when(r['finished_at']), seconds(r['duration']), seconds(r['waited']),
                 h(r['attempts']), h(truncate(r['error'] or '', 60))] for r in rows]
    text = table(headers, body, cls='list %s' % state, empty='no %s tasks' % state
                 if state != 'history' else 'no finished runs recorded')
    links = []
    if pager.get('prev') is not None:
        links.append('<a href="%s">&larr; newer</a>' % h(pager['prev']))
    if pager.get('next') is not None:
        links.append('<a href="%s" id="next-page">%s &rarr;</a>'
                     % (h(pager['next']), 'older' if state == 'history' else 'next'))
    note = '<p class="pager">%s %s</p>' % (h(pager.get('note', '')), ' '.join(links))
    return text + note


def bulk_actions(csrf: str, here: str) -> str:
    return ('<div class="bulk">%s %s</div>'
            % (form('/action/requeue', csrf, {'all': '1'}, 'Requeue all', 'requeue-all',
                    confirm='Put every dead letter back in the queue?', next_url=here),
               form('/action/purge', csrf, {'all': '1'}, 'Purge all', 'danger purge-all',
                    confirm='Delete every dead letter for good?', next_url=here)))


# -- the task page --------------------------------------------------------------------------------
def _pre(text: str) -> str:
    return '<pre>%s</pre>' % h(text)


def task_fragment(status: Any, csrf: str, utc: bool) -> Tuple[str, str]:
    """(title, body) of a task's page."""
    task = status.task
    here = '/task/%s' % _quote(status.id)
    rows: List[Tuple[str, str]] = [
        ('state', '<span class="state %s" id="task-state">%s</span>%s'
         % (h(status.state), h(status.state),
            ' (revoke flag set)' if status.revoked and status.state != 'revoked' else '')),
        ('task id', h(status.id)), ('name', h(status.name)),
        ('stored', h(status.location)), ('enqueued', when(status.enqueued_at)),
        ('eta', when(status.eta)), ('started', when(status.started_at)),
        ('finished', when(status.finished_at)), ('attempts', h(status.attempts)),
        ('owner', h(status.owner))]
    if task is not None:
        rows.insert(3, ('arguments', _pre(call_text(task.args, task.kwargs))))
        rows.append(('options', h('priority %s, retries %s, retry delay %s, timeout %s' % (
            task.options.priority, task.options.retries, task.options.retry_delay,
            task.options.timeout))))
    if status.result is not EMPTY and not status.error:
        rows.append(('result', _pre(safe_repr(status.result))))
    details = ''.join('<tr><th>%s</th><td>%s</td></tr>' % (h(k), v) for k, v in rows)
    actions: List[str] = []
    if status.location in ('ready', 'scheduled', 'claimed') and not status.revoked:
        actions.append(form('/action/revoke', csrf, {'task_id': status.id}, 'Revoke',
                            'revoke', next_url=here))
    if status.revoked:
        actions.append(form('/action/restore', csrf, {'task_id': status.id}, 'Restore',
                            'restore', next_url=here))
    if status.dead_letter_id is not None:
        ids = {'ids': str(status.dead_letter_id)}
        actions.append(form('/action/requeue', csrf, ids, 'Requeue', 'requeue', next_url=here))
        actions.append(form('/action/purge', csrf, ids, 'Purge', 'danger purge',
                            confirm='Delete this dead letter for good?', next_url=here))
    error = '<h2>Error</h2>%s' % _pre(status.error) if status.error else ''
    timeline = _timeline(status)
    body = ('<table class="details">%s</table><div class="actions">%s</div>%s'
            '<h2>Timeline</h2>%s' % (details, ' '.join(actions), error, timeline))
    return 'Task %s' % (status.name or status.id), body


def _timeline(status: Any) -> str:
    events: List[Tuple[float, str]] = []
    for run in status.runs:
        if run.enqueued_at is not None:
            events.append((run.enqueued_at, 'enqueued'))
        started = run.finished_at - run.duration if run.duration is not None else run.claimed_at
        if started is not None:
            events.append((started, 'started (attempt %d%s)' % (
                run.attempts, ', by %s' % run.owner if run.owner else '')))
        events.append((run.finished_at, '%s%s' % (run.outcome, ': %s' % run.error
                                                  if run.error else '')))
    if status.location is not None:
        if status.enqueued_at is not None:
            events.append((status.enqueued_at, 'enqueued'))
        if status.state == 'running' and status.started_at is not None:
            events.append((status.started_at, 'started, running now (by %s)' % status.owner))
        if status.eta is not None:
            events.append((status.eta, 'due'))
        if status.location == 'dead' and status.finished_at is not None:
            events.append((status.finished_at, 'moved to the dead letters'))
    seen = set()
    items = []
    for ts, what in sorted(events):
        if (ts, what) in seen:
            continue
        seen.add((ts, what))
        items.append('<li><time>%s</time> %s</li>' % (
            h(_dt.datetime.fromtimestamp(ts).isoformat(sep=' ', timespec='milliseconds')),
            h(what)))
    return '<ol class="timeline">%s</ol>' % ''.join(items) if items else \
        '<p class="empty">nothing recorded</p>'
