"""The dashboard application: routes, the data each page shows, and the POST actions.

:class:`Dashboard` maps a request (method, path, query, form, headers) to a response
(status, headers, body); :mod:`sqlq.web.server` puts it behind an HTTP server. It only reads
the queue's storage (short reads: SQLite readers never block writers in WAL mode) except for
the POST actions (requeue, purge, revoke, restore), which need the CSRF token of the page
they come from.

Routes: ``/`` (overview), ``/tasks/<pending|scheduled|running|failed|history>`` (lists, with
``q`` searching a task id or name, paged), ``/task/<id>``, ``/fragment/...`` (the parts the
pages re-fetch to stay live), ``/api/overview``, ``/api/tasks/<list>``, ``/api/task/<id>``
(JSON), ``/metrics`` (Prometheus), ``/static/...``.
"""
from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote, urlencode

from ..cli._format import call_text, safe_repr
from ..metrics import CONTENT_TYPE as METRICS_TYPE
from ..metrics import exposition
from ..recovery import ClaimRecovery
from . import pages

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Queue

__all__ = ['Dashboard', 'Response']

#: (status, headers, body)
Response = Tuple[int, List[Tuple[str, str]], bytes]
#: Entries a list page shows at most per page, and by default.
MAX_LIMIT, DEFAULT_LIMIT = 500, 50
#: Tasks a search by name looks through in a pending or scheduled list (a bounded scan).
NAME_SEARCH_WINDOW = 5000

_STATIC = {'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8'}
_SECURITY = [
    ('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    ('X-Content-Type-Options', 'nosniff'), ('Referrer-Policy', 'same-origin'),
    ('X-Frame-Options', 'DENY'), ('Cache-Control', 'no-store')]


class Dashboard:
    """The dashboard of one queue. ``auth``: ``'user:password'`` for HTTP basic
    authentication of every request (None: none, for localhost)."""

    def __init__(self, queue: 'Queue', auth: Optional[str] = None) -> None:
        self.queue = queue
        self.auth = auth
        #: Every form carries it; a POST without it is refused (CSRF).
        self.csrf = secrets.token_urlsafe(24)
        self._static = resources.files('sqlq.web') / 'static'

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, path: str, query: Mapping[str, str],
               form: Mapping[str, List[str]], headers: Mapping[str, str]) -> Response:
        if self.auth is not None and not self._authorized(headers.get('Authorization', '')):
            return _response(401, b'authentication required\n', 'text/plain; charset=utf-8',
                             [('WWW-Authenticate', 'Basic realm="sqlq", charset="UTF-8"')])
        try:
            if method == 'POST':
                return self._post(path, form, headers)
            if method not in ('GET', 'HEAD'):
                return _response(405, b'method not allowed\n', 'text/plain; charset=utf-8')
            return self._get(path, query)
        except _NotFound as exc:
            return self._html(404, 'Not found', '/', '<p>%s</p>' % pages.h(exc))

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(' ')
        if scheme.lower() != 'basic':
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, str(self.auth).encode('utf-8'))

    def _get(self, path: str, query: Mapping[str, str]) -> Response:
        if path.startswith('/static/'):
            return self._static_file(path[len('/static/'):])
        if path == '/metrics':
            return _response(200, exposition(self.queue).encode(), METRICS_TYPE)
        if path == '/api/overview':
            data = self.overview()
            data['minutes'] = [dict(m._asdict()) for m in data['minutes']]
            return _json(data)
        if path.startswith('/api/tasks/'):
            return _json(self.listing(path[len('/api/tasks/'):], query)[0])
        if path.startswith('/api/task/'):
            return _json(self.task_json(unquote(path[len('/api/task/'):])))
        fragment = path.startswith('/fragment/')
        if fragment:
            path = path[len('/fragment'):]
        if path == '/':
            body = pages.overview_fragment(self.overview())
            if not fragment:
                body = '<div data-live="/fragment/" data-every="2000">%s</div>' % body
            return self._html(200, 'Overview', '/', body, fragment)
        if path.startswith('/tasks/'):
            return self._list_page(path[len('/tasks/'):], query, fragment)
        if path.startswith('/task/'):
            task_id = unquote(path[len('/task/'):])
            title, body = pages.task_fragment(self.queue.status(task_id), self.csrf,
                                              self.queue.utc)
            if not fragment:
                body = '<div data-live="/fragment/task/%s" data-every="2000">%s</div>' % (
                    pages.h(quote(task_id, safe='')), body)
            return self._html(200, title, '', body, fragment)
        raise _NotFound('no page %s' % path)

    def _html(self, status: int, title: str, current: str, body: str,
              fragment: bool = False) -> Response:
        if not fragment:
            stats_db = self._database()
            body = pages.page(title, self.queue.name, stats_db, current, body)
        return _response(status, body.encode('utf-8'), 'text/html; charset=utf-8')

    def _database(self) -> str:
        storage = self.queue.storage
        return str(getattr(storage, 'filename', None) or getattr(storage, 'address', None)
                   or 'memory')

    def _static_file(self, name: str) -> Response:
        if name not in _STATIC:
            raise _NotFound('no file %s' % name)
        data = (self._static / name).read_bytes()
        return _response(200, data, _STATIC[name])

    # ------------------------------------------------------------------ data

    def overview(self) -> Dict[str, Any]:
        queue = self.queue
        counts = queue.stats()
        minutes = queue.throughput(3600)
        storage = queue.storage
        claims = storage.claim_owners()
        recovery = ClaimRecovery(storage)
        now = time.time()
        owners = [{'id': o.id, 'host': o.host, 'pid': o.pid, 'started_at': o.started_at,
                   'heartbeat_at': o.heartbeat_at, 'claimed': claims.get(o.id, 0),
                   'alive': None if o.host is None else not recovery.owner_is_dead(
                       o.id, o.started_at, o.heartbeat_at, now)}
                  for o in storage.owners()]
        return {
            'queue': queue.name, 'database': self._database(), 'counts': counts,
            'minutes': minutes, 'owners': owners,
            'last_hour': {'runs': sum(m.runs for m in minutes),
                          'failures': sum(m.failures for m in minutes)},
            'tasks': [dict(f._asdict()) for f in queue.task_stats(3600)],
        }

    def listing(self, state: str, query: Mapping[str, str]) -> Tuple[List[Dict[str, Any]],
                                                                     Dict[str, Any]]:
        """The rows of a list page, and its pager."""
        if state not in pages.LISTS:
            raise _NotFound('no list %s' % state)
        limit = min(max(_int(query.get('limit'), DEFAULT_LIMIT), 1), MAX_LIMIT)
        offset = max(_int(query.get('offset'), 0), 0)
        search = (query.get('q') or '').strip()
        queue = self.queue
        if state == 'history':
            return self._history(query, limit, search)
        if search and self._is_task_id(search):  # one index look-up
            status = queue.status(search)
            wanted = {'pending': 'ready', 'scheduled': 'scheduled', 'running': 'claimed',
                      'failed': 'dead'}[state]
            rows = [self._row_of_status(state, status)] if status.location == wanted else []
            return rows, {'note': 'task %s' % search}
        total = {'pending': queue.pending_count, 'scheduled': queue.scheduled_count,
                 'running': queue.running_count, 'failed': queue.dead_letter_count}[state]()
        if search:  # by task name: a bounded window
            rows = [r for r in self._rows(state, NAME_SEARCH_WINDOW, offset)
                    if r['name'] == search][:limit]
            return rows, {'note': '%d %s tasks named %s among the %d from %d on' % (
                len(rows), state, search, NAME_SEARCH_WINDOW, offset + 1)}
        rows = self._rows(state, limit, offset)
        base = '/tasks/%s?' % state
        pager = {'note': 'showing %d-%d of %d' % (offset + 1, offset + len(rows), total)
                 if rows else '',
                 'prev': base + urlencode({'offset': max(offset - limit, 0), 'limit': limit})
                 if offset else None,
                 'next': base + urlencode({'offset': offset + limit, 'limit': limit})
                 if offset + len(rows) < total else None}
        return rows, pager

    def _is_task_id(self, text: str) -> bool:
        return bool(self.queue.status(text).location) or bool(
            self.queue.storage.history(1, key=text))

    def _rows(self, state: str, limit: int, offset: int) -> List[Dict[str, Any]]:
        queue = self.queue
        if state in ('pending', 'scheduled'):
            tasks = (queue.pending if state == 'pending' else queue.scheduled)(limit, offset)
            return [{'id': t.id, 'name': t.name, 'args': call_text(t.args, t.kwargs),
                     'eta': None if t.eta is None else queue.time.to_timestamp(t.eta),
                     'priority': t.options.priority, 'retries': t.options.retries}
                    for t in tasks]
        if state == 'running':
            return [{'id': r.task.id if r.task else None, 'name': r.task.name if r.task else None,
                     'args': call_text(r.task.args, r.task.kwargs) if r.task else None,
                     'owner': r.owner, 'claimed_at': r.claimed_at, 'attempts': r.attempts,
                     'owner_alive': r.owner_alive}
                    for r in queue.running()[offset:offset + limit]]
        return [{'dead_letter_id': f.id, 'id': f.task.id if f.task else None,
                 'name': f.task.name if f.task else None, 'reason': f.reason,
                 'failed_at': f.failed_at, 'attempts': f.attempts}
                for f in queue.failed(limit, offset)]

    def _row_of_status(self, state: str, status: Any) -> Dict[str, Any]:
        task = status.task
        return {'id': status.id, 'name': status.name,
                'args': call_text(task.args, task.kwargs) if task else '',
                'eta': status.eta, 'priority': task.options.priority if task else None,
                'retries': task.options.retries if task else None, 'owner': status.owner,
                'claimed_at': status.started_at, 'attempts': status.attempts,
                'owner_alive': None, 'dead_letter_id': status.dead_letter_id,
                'reason': status.error or '', 'failed_at': status.finished_at}

    def _history(self, query: Mapping[str, str], limit: int,
                 search: str) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
        before = _int(query.get('before'), 0) or None
        outcome = query.get('outcome') or None
        name = query.get('name') or None
        task_id = None
        if search:
            if self.queue.storage.history(1, key=search):
                task_id = search
            else:
                name = search
        runs = self.queue.history(limit, before, name, task_id, outcome)
        rows = [{'run': r.id, 'id': r.key, 'name': r.name, 'outcome': r.outcome,
                 'finished_at': r.finished_at, 'duration': r.duration,
                 'waited': None if r.claimed_at is None or r.enqueued_at is None
                 else max(r.claimed_at - r.enqueued_at, 0.0),
                 'attempts': r.attempts, 'error': r.error, 'owner': r.owner} for r in runs]
        params = {k: v for k, v in (('q', search), ('outcome', outcome or ''),
                                    ('name', query.get('name') or '')) if v}
        nxt = None
        if len(runs) == limit and runs:
            nxt = '/tasks/history?' + urlencode(dict(params, before=runs[-1].id, limit=limit))
        return rows, {'note': '%d runs' % len(rows) if rows else '', 'next': nxt,
                      'prev': '/tasks/history?' + urlencode(params) if before else None}

    def _list_page(self, state: str, query: Mapping[str, str], fragment: bool) -> Response:
        rows, pager = self.listing(state, query)
        here = '/tasks/%s%s' % (state, '?' + urlencode(dict(query)) if query else '')
        body = pages.list_fragment(state, rows, self.csrf, here, pager)
        if fragment:
            return self._html(200, state, '', body, True)
        live = '/fragment/tasks/%s%s' % (state, '?' + urlencode(dict(query)) if query else '')
        body = '<div data-live="%s" data-every="3000">%s</div>' % (pages.h(live), body)
        names = self.queue.registered_task_names()
        top = pages.search_form(state, dict(query), names)
        if state == 'failed':
            top += pages.bulk_actions(self.csrf, here)
        titles = {'pending': 'Pending tasks', 'scheduled': 'Scheduled tasks',
                  'running': 'Running tasks', 'failed': 'Failed tasks (dead letters)',
                  'history': 'History of finished runs'}
        return self._html(200, titles[state], '/tasks/%s' % state, top + body)

    def task_json(self, task_id: str) -> Dict[str, Any]:
        from ..cli.tracking import status_json
        return status_json(self.queue.status(task_id))

    # ------------------------------------------------------------------ actions

    def _post(self, path: str, form: Mapping[str, List[str]],
              headers: Mapping[str, str]) -> Response:
        token = (form.get('csrf') or [''])[0]
        if not hmac.compare_digest(token.encode(), self.csrf.encode()) or \
                not _same_origin(headers):
            return _response(403, b'forbidden: missing or wrong CSRF token\n',
                             'text/plain; charset=utf-8')
        actions: Dict[str, Callable[[Mapping[str, List[str]]], Any]] = {
            '/action/requeue': self._requeue, '/action/purge': self._purge,
            '/action/revoke': self._revoke, '/action/restore': self._restore}
        action = actions.get(path)
        if action is None:
            raise _NotFound('no action %s' % path)
        action(form)
        target = (form.get('next') or ['/'])[0]
        if not target.startswith('/') or target.startswith('//'):
            target = '/'
        return _response(303, b'', 'text/plain; charset=utf-8', [('Location', target)])

    @staticmethod
    def _ids(form: Mapping[str, List[str]]) -> Optional[List[int]]:
        if (form.get('all') or [''])[0] == '1':
            return None
        return [int(i) for value in form.get('ids', []) for i in value.split(',')
                if i.strip().isdigit()]

    def _requeue(self, form: Mapping[str, List[str]]) -> None:
        ids = self._ids(form)
        if ids is None or ids:
            self.queue.requeue_failed(ids)

    def _purge(self, form: Mapping[str, List[str]]) -> None:
        ids = self._ids(form)
        if ids is None or ids:
            self.queue.purge_failed(ids)

    def _revoke(self, form: Mapping[str, List[str]]) -> None:
        for task_id in form.get('task_id', []):
            self.queue.revoke_by_id(task_id)

    def _restore(self, form: Mapping[str, List[str]]) -> None:
        for task_id in form.get('task_id', []):
            self.queue.restore_by_id(task_id)


class _NotFound(Exception):
    pass


def _same_origin(headers: Mapping[str, str]) -> bool:
    """A browser's POST names its page's origin (Origin, or Referer): it must be this host's."""
    host = headers.get('Host', '')
    for name in ('Origin', 'Referer'):
        value = headers.get(name)
        if value:
            rest = value.split('://', 1)[-1]
            return rest.split('/', 1)[0] == host
    return True  # not a browser (curl): the token alone


def _int(text: Optional[str], default: int) -> int:
    try:
        return int(text) if text not in (None, '') else default
    except ValueError:
        return default


def _response(status: int, body: bytes, content_type: str,
              extra: Optional[List[Tuple[str, str]]] = None) -> Response:
    headers = [('Content-Type', content_type), ('Content-Length', str(len(body)))]
    return status, headers + _SECURITY + list(extra or ()), body


def _json(data: Any) -> Response:
    return _response(200, json.dumps(data, default=safe_repr, ensure_ascii=False).encode(),
                     'application/json')
