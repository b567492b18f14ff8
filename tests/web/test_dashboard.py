"""The dashboard over HTTP (no browser): every page answers, arguments are escaped, POST
actions need the CSRF token, authentication, the JSON API, /metrics, and the refusal to serve
on a public address without authentication."""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from sqlq.cli import main
from tests._helpers import drain

parser = pytest.importorskip('prometheus_client.parser')


def get(server, path, headers=None):
    request = urllib.request.Request(server.url.rstrip('/') + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def post(server, path, fields, headers=None):
    data = urllib.parse.urlencode(fields, doseq=True).encode()
    request = urllib.request.Request(server.url.rstrip('/') + path, data=data,
                                     headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def csrf_of(server):
    return server.dashboard.csrf


def test_every_page_answers(web_queue, server):
    result = web_queue.enqueue(web_queue.registry.get('app.add')((1, 2)))
    for path in ('/', '/tasks/pending', '/tasks/scheduled', '/tasks/running', '/tasks/failed',
                 '/tasks/history', '/task/%s' % result.id, '/fragment/', '/api/overview',
                 '/api/tasks/pending', '/api/task/%s' % result.id, '/metrics',
                 '/static/app.js', '/static/style.css'):
        status, headers, _ = get(server, path)
        assert status == 200, path
        assert headers['X-Content-Type-Options'] == 'nosniff'
        assert "script-src 'self'" in headers['Content-Security-Policy']
    assert get(server, '/no/such/page')[0] == 404
    assert get(server, '/static/../app.py')[0] == 404


def test_arguments_and_errors_are_escaped(web_queue, server):
    echo = web_queue.registry.get('app.echo')
    evil = '<script>alert("x")</script>'
    result = web_queue.enqueue(echo((evil,), {'k': '"><img src=x onerror=alert(1)>'}))
    for path in ('/tasks/pending', '/task/%s' % result.id):
        _, _, body = get(server, path)
        assert evil not in body and '<img src=x' not in body
        assert '&lt;script&gt;' in body
    task = web_queue.registry.get('app.boom')((evil,))
    web_queue.enqueue(task)
    drain(web_queue)
    for path in ('/tasks/failed', '/task/%s' % task.id, '/tasks/history'):
        _, _, body = get(server, path)
        assert evil not in body, path


def test_actions_need_the_csrf_token(web_queue, server):
    boom = web_queue.registry.get('app.boom')
    web_queue.enqueue(boom((1,)))
    drain(web_queue)
    (letter,) = web_queue.failed()
    assert post(server, '/action/requeue', {'ids': letter.id})[0] == 403
    assert post(server, '/action/requeue', {'ids': letter.id, 'csrf': 'wrong'})[0] == 403
    cross = {'Origin': 'http://evil.example'}
    assert post(server, '/action/requeue', {'ids': letter.id, 'csrf': csrf_of(server)},
                cross)[0] == 403
    assert web_queue.dead_letter_count() == 1
    status, headers = post(server, '/action/requeue',
                           {'ids': letter.id, 'csrf': csrf_of(server), 'next': '/tasks/failed'})
    assert status == 303 and headers['Location'] == '/tasks/failed'
    assert web_queue.dead_letter_count() == 0 and web_queue.pending_count() == 1
    status, headers = post(server, '/action/revoke', {'task_id': 'some-id',
                                                      'csrf': csrf_of(server),
                                                      'next': 'http://evil.example/'})
    assert status == 303 and headers['Location'] == '/'  # no redirect elsewhere
    assert web_queue.is_revoked('some-id')
    assert post(server, '/action/restore', {'task_id': 'some-id', 'csrf': csrf_of(server)})[0] \
        == 303
    assert not web_queue.is_revoked('some-id')


def test_purge_all(web_queue, server):
    boom = web_queue.registry.get('app.boom')
    for i in range(3):
        web_queue.enqueue(boom((i,)))
    drain(web_queue)
    assert post(server, '/action/purge', {'all': '1', 'csrf': csrf_of(server)})[0] == 303
    assert web_queue.dead_letter_count() == 0


def test_lists_search_by_id_and_name_and_page(web_queue, server):
    add, echo = web_queue.registry.get('app.add'), web_queue.registry.get('app.echo')
    adds = [web_queue.enqueue(add((i, i))) for i in range(60)]
    web_queue.enqueue(echo(('e',)))
    rows = json.loads(get(server, '/api/tasks/pending')[2])
    assert len(rows) == 50
    assert len(json.loads(get(server, '/api/tasks/pending?offset=50')[2])) == 11
    found = json.loads(get(server, '/api/tasks/pending?q=%s' % adds[30].id)[2])
    assert [r['id'] for r in found] == [adds[30].id]
    named = json.loads(get(server, '/api/tasks/pending?q=app.echo')[2])
    assert [r['name'] for r in named] == ['app.echo']
    _, _, body = get(server, '/tasks/pending')
    assert 'showing 1-50 of 61' in body and 'offset=50' in body


def test_overview_json_and_metrics(web_queue, server):
    add = web_queue.registry.get('app.add')
    for i in range(3):
        web_queue.enqueue(add((i, i)))
    web_queue.heartbeat()
    data = json.loads(get(server, '/api/overview')[2])
    assert data['counts']['pending'] == 3 and data['database'].endswith('web.db')
    assert len(data['minutes']) == 60 and data['owners'][0]['alive'] is True
    drain(web_queue)
    data = json.loads(get(server, '/api/overview')[2])
    assert data['counts']['pending'] == 0 and data['last_hour']['runs'] == 3
    status, headers, text = get(server, '/metrics')
    assert headers['Content-Type'].startswith('text/plain; version=0.0.4')
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert families['sqlq_tasks_completed'].samples[0].value == 3


def test_basic_auth(web_queue):
    from sqlq.web import make_server
    srv = make_server(web_queue, '127.0.0.1', 0, auth='admin:s3cret')
    thread = srv.serve_in_thread()
    try:
        status, headers, _ = get(srv, '/')
        assert status == 401 and headers['WWW-Authenticate'].startswith('Basic')
        wrong = base64.b64encode(b'admin:nope').decode()
        assert get(srv, '/', {'Authorization': 'Basic ' + wrong})[0] == 401
        right = base64.b64encode(b'admin:s3cret').decode()
        assert get(srv, '/', {'Authorization': 'Basic ' + right})[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


def test_web_command_refuses_a_public_address_without_auth(capsys):
    assert main(['web', 'some.queue', '--host', '0.0.0.0']) == 2
    assert 'without authentication' in capsys.readouterr().err


def test_loopback_detection():
    from sqlq.web.server import is_loopback
    assert is_loopback('127.0.0.1') and is_loopback('::1') and is_loopback('localhost')
    assert not is_loopback('0.0.0.0') and not is_loopback('') and not is_loopback('10.1.2.3')
