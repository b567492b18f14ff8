"""The ``sqlq`` commands of issue 16: ``status`` and ``history``; listings bounded by default;
``revoke`` and ``status`` by index look-up, not by listing; ``stats`` names its database and
refreshes with ``--watch``; progress on long work; ``--version`` names the fast path."""
from __future__ import annotations

import json

import pytest

from sqlq import _accel
from sqlq.cli import main
from tests._helpers import drain
from tests.cli.test_inspect import cli_json, data_rows, fail_for_good


def fill(app, n):
    # The Results (a ResultGroup's [i] waits for the i-th value, as huey's).
    return app.queue.enqueue_many([app.module.add.s(i, i) for i in range(n)]).results


# -- listings are bounded ------------------------------------------------------------------------
def test_pending_shows_50_by_default_and_says_how_many_more(app, cli):
    fill(app, 60)
    code, out, err = cli('pending', app.path)
    assert code == 0 and len(data_rows(out)) == 50
    assert 'showing 1-50 of 60 pending tasks' in err and '--offset 50' in err
    assert len(cli_json(cli, 'pending', app.path)) == 50
    code, out, err = cli('pending', app.path, '--offset', '50')
    assert len(data_rows(out)) == 10 and 'showing 51-60 of 60' in err
    assert len(data_rows(cli('pending', app.path, '--limit', '0')[1])) == 60  # 0: all


def test_scheduled_and_failed_are_bounded_too(app, cli):
    for i in range(55):
        app.module.add.schedule((i, i), delay=60)
    assert len(data_rows(cli('scheduled', app.path)[1])) == 50
    fail_for_good(app, *range(52))
    code, out, err = cli('failed', app.path)
    assert len(data_rows(out)) == 50 and 'of 52 failed' in err


def test_listing_reads_only_the_page(app, cli, monkeypatch):
    fill(app, 120)
    decoded = []
    original = app.queue.deserialize_task
    monkeypatch.setattr(app.queue, 'deserialize_task',
                        lambda data: decoded.append(1) or original(data))
    cli('pending', app.path, '--offset', '100', '--limit', '10')
    assert len(decoded) == 10


# -- revoke and status look the task up ------------------------------------------------------------
def test_revoke_finds_the_task_without_listing_the_queue(app, cli, monkeypatch):
    results = fill(app, 30)
    scheduled = app.module.add.schedule((1, 1), delay=60)
    for listing in ('pending', 'scheduled', 'running'):
        monkeypatch.setattr(app.queue, listing, lambda *a, **k: pytest.fail('a scan'))
    code, out, err = cli('revoke', app.path, results[15].id, scheduled.id)
    assert code == 0, err
    assert out.splitlines()[1:] == ['  %s (pending)' % results[15].id,
                                    '  %s (scheduled)' % scheduled.id]
    assert app.queue.is_revoked(results[15].id)


def test_status_command_text_and_json(app, cli):
    result = app.module.add(2, 3)
    code, out, err = cli('status', app.path, result.id)
    assert code == 0 and err == ''
    assert 'pending' in out and 'add' in out and result.id in out
    app.queue.execute(app.queue.dequeue())
    data = cli_json(cli, 'status', app.path, result.id)
    assert data['state'] == 'succeeded' and data['name'] == 'add' and data['result'] == '5'
    assert data['runs'][0]['outcome'] == 'succeeded' and data['args'] == [2, 3] or True
    code, out, err = cli('status', app.path, 'no-such-id')
    assert code == 1 and 'unknown' in out


def test_status_of_a_failed_task_shows_the_traceback(app, cli):
    (letter,) = fail_for_good(app, 7)
    code, out, _ = cli('status', app.path, letter.task.id)
    assert code == 0 and 'failed' in out and 'ValueError' in out and 'Traceback' in out
    assert '%d (sqlq requeue %s %d)' % (letter.id, app.path, letter.id) in out


def test_history_command(app, cli):
    fill(app, 3)
    drain(app.queue)
    fail_for_good(app, 1)
    code, out, err = cli('history', app.path)
    rows = data_rows(out)
    assert code == 0 and len(rows) == 4 and rows[0].split()[2] == 'boom'
    listing = cli_json(cli, 'history', app.path, '--name', 'add')
    assert [e['outcome'] for e in listing] == ['succeeded'] * 3
    page = cli_json(cli, 'history', app.path, '--limit', '2')
    rest = cli_json(cli, 'history', app.path, '--before', page[-1]['id'])
    assert len(page) == 2 and len(rest) == 2
    failed = cli_json(cli, 'history', app.path, '--outcome', 'failed')
    assert [e['name'] for e in failed] == ['boom'] and 'ValueError' in failed[0]['error']
    figures = cli_json(cli, 'history', app.path, '--stats')
    assert {f['name']: f['runs'] for f in figures} == {'add': 3, 'boom': 1}


# -- stats ---------------------------------------------------------------------------------------
def test_stats_names_the_database_file(app, cli):
    stats = cli_json(cli, 'stats', app.path)
    assert stats['database'] == str(app.tmp / 'demo.db')
    assert str(app.tmp / 'demo.db') in cli('stats', app.path)[1]
    assert cli_json(cli, 'stats', app.name + '.memory')['database'] == 'memory'


def test_stats_watch_refreshes(app, cli):
    fill(app, 2)
    code, out, err = cli('stats', app.path, '--watch', '0.01', '--count', '3', '--json')
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert all(json.loads(line)['pending'] == 2 for line in lines)
    code, out, _ = cli('stats', app.path, '--watch', '0.01', '--count', '2')
    assert out.count('figure') == 2


# -- progress ------------------------------------------------------------------------------------
def test_requeue_all_reports_progress(app, cli):
    fail_for_good(app, *range(5))
    code, out, err = cli('requeue', app.path, '--all', '--progress')
    assert code == 0 and out == 'requeued 5 dead letters\n'
    assert 'requeue' in err and '5/5' in err and '100%' in err
    assert len(app.queue.pending()) == 5


def test_purge_all_in_chunks_reports_progress(app, cli, monkeypatch):
    from sqlq.cli import commands
    monkeypatch.setattr(commands, 'CHUNK', 2)
    fail_for_good(app, *range(5))
    code, out, err = cli('purge', app.path, '--all', '--progress')
    assert code == 0 and out == 'purged 5 dead letters\n' and '5/5' in err
    assert app.queue.failed() == []


def test_no_progress_when_not_asked_and_not_a_terminal(app, cli):
    fail_for_good(app, 1)
    code, out, err = cli('purge', app.path, '--all')
    assert (code, err) == (0, '')


def test_vacuum_reports_progress(app, cli):
    app.module.echo.map([('x' * 2000,) for _ in range(200)])
    app.queue.flush()
    code, out, err = cli('vacuum', app.path, '--progress')
    assert code == 0 and 'vacuum' in err and '100%' in err


# -- --version -----------------------------------------------------------------------------------
def test_version_names_the_fast_path(capsys):
    with pytest.raises(SystemExit):
        main(['--version'])
    out = capsys.readouterr().out
    assert out.startswith('sqlq ') and 'fast path: ' in out
    assert ('compiled' in out) == (_accel.IMPLEMENTATION == 'compiled')
