"""The inspection commands of the ``sqlq`` CLI: stats, pending, scheduled, running, failed,
requeue, revoke, purge and vacuum, as tables for a person and ``--json`` for scripts.

Most tests call ``sqlq.cli.main`` in-process on an app module written to ``tmp_path`` (the same
Queue object the test drives); a few run the real ``python -m sqlq`` as a subprocess.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest

from sqlq.cli import main
from tests._helpers import ROOT_DIR

APP = '''
from sqlq import MemoryQueue, SqliteQueue

queue = SqliteQueue({db!r}, name='demo')
memory = MemoryQueue('mem')
not_a_queue = 42


@queue.task(name='add')
def add(a, b):
    return a + b


@queue.task(name='boom')
def boom(x):
    raise ValueError('boom %s' % x)


@queue.task(name='echo')
def echo(*args, **kwargs):
    return args, kwargs
'''


@pytest.fixture
def app(tmp_path, monkeypatch):
    name = 'inspect_app_%s' % uuid.uuid4().hex[:10]
    (tmp_path / (name + '.py')).write_text(APP.format(db=str(tmp_path / 'demo.db')))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    try:
        yield SimpleNamespace(module=module, queue=module.queue, path=name + '.queue',
                              name=name, tmp=tmp_path)
    finally:
        module.queue.close()
        sys.modules.pop(name, None)


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` -> (exit code, stdout, stderr) of ``sqlq.cli.main(argv)``."""
    def run(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors and --help
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def cli_json(cli, *argv):
    code, out, err = cli(*(argv + ('--json',)))
    assert code == 0, err
    return json.loads(out)


def fail_for_good(app, *values):
    """Run ``boom(value)`` for each value: each becomes a dead letter."""
    for value in values:
        app.module.boom(value)
    ran = 0
    while True:
        task = app.queue.dequeue()
        if task is None:
            break
        app.queue.execute(task)
        ran += 1
    assert ran == len(values)
    return app.queue.failed()


def data_rows(out):
    """The lines of a table after its header and rule."""
    lines = out.rstrip('\n').splitlines()
    assert set(lines[1].replace(' ', '')) == {'-'}, out
    return lines[2:]


# -- stats -------------------------------------------------------------------------------------
def test_stats_json_counts_every_state(app, cli):
    fail_for_good(app, 1)
    app.module.add(1, 2)
    app.module.add(3, 4)
    app.module.add(7, 8)
    app.module.add.schedule((5, 6), delay=3600)
    claimed = app.queue.dequeue()          # add(1, 2): running, owned by this process
    assert claimed is not None
    stats = cli_json(cli, 'stats', app.path)
    assert stats['queue'] == 'demo'
    assert (stats['pending'], stats['scheduled'], stats['running'], stats['failed']) == \
        (2, 1, 1, 1)
    assert stats['db_size'] > 0 and stats['wal_size'] >= 0
    assert stats['running_owners'] == {app.queue.storage.owner_id: 1}


def test_stats_table_is_readable(app, cli):
    app.module.add(1, 2)
    app.queue.dequeue()
    code, out, err = cli('stats', app.path)
    assert code == 0 and err == ''
    lines = out.splitlines()
    assert lines[0].split() == ['figure', 'value']
    text = '\n'.join(data_rows(out))
    for label in ('queue', 'pending', 'scheduled', 'running', 'failed', 'results',
                  'database size', 'WAL size'):
        assert label in text
    assert 'demo' in text
    assert app.queue.storage.owner_id in text       # running with owner
    size_line = next(text for text in lines if text.startswith('database size'))
    assert size_line.split()[-1] in ('B', 'KiB', 'MiB', 'GiB')


def test_stats_of_an_empty_memory_queue(app, cli):
    stats = cli_json(cli, 'stats', app.name + '.memory')
    assert (stats['pending'], stats['scheduled'], stats['running'], stats['failed']) == \
        (0, 0, 0, 0)
    assert stats['db_size'] == 0 and stats['running_owners'] == {}
    code, out, _ = cli('stats', app.name + '.memory')
    assert code == 0 and '0 B' in out


# -- pending / scheduled ----------------------------------------------------------------------
def test_pending_table_and_json(app, cli):
    first = app.module.add(1, 2)
    second = app.module.echo('x', key='value')
    code, out, err = cli('pending', app.path)
    assert code == 0 and err == ''
    assert out.splitlines()[0].split() == ['id', 'name', 'args', 'priority', 'retries']
    rows = data_rows(out)
    assert len(rows) == 2
    assert rows[0].split()[:2] == [first.id, 'add'] and '1, 2' in rows[0]
    assert rows[1].split()[:2] == [second.id, 'echo'] and "'x', key='value'" in rows[1]

    listing = cli_json(cli, 'pending', app.path)
    assert [t['id'] for t in listing] == [first.id, second.id]
    assert listing[0] == {'id': first.id, 'name': 'add', 'args': [1, 2], 'kwargs': {},
                          'priority': None, 'eta': None, 'retries': 0}
    assert listing[1]['kwargs'] == {'key': 'value'}


def test_pending_limit_and_truncation(app, cli):
    for i in range(3):
        app.module.echo('x' * 100, i)
    code, out, _ = cli('pending', app.path, '--limit', '2')
    rows = data_rows(out)
    assert len(rows) == 2
    assert all('\u2026' in row and 'x' * 100 not in row for row in rows)
    code, out, _ = cli('pending', app.path, '--full')
    rows = data_rows(out)
    assert len(rows) == 3 and all('x' * 100 in row for row in rows)
    assert len(cli_json(cli, 'pending', app.path, '--limit', '1')) == 1


def test_json_holds_arguments_json_cannot(app, cli):
    app.module.echo({1, 2}, when=b'raw')
    (task,) = cli_json(cli, 'pending', app.path)
    assert task['args'] == ['{1, 2}'] and task['kwargs'] == {'when': "b'raw'"}


def test_scheduled_shows_eta(app, cli):
    eta = time.time() + 3600
    result = app.module.add.schedule((1, 2), eta=eta)
    code, out, _ = cli('scheduled', app.path)
    assert code == 0
    assert out.splitlines()[0].split() == ['id', 'name', 'args', 'eta', 'priority', 'retries']
    (row,) = data_rows(out)
    local = time.strftime('%Y-%m-%d %H:%M', time.localtime(eta))
    assert row.startswith(result.id) and local in row
    (task,) = cli_json(cli, 'scheduled', app.path)
    assert task['id'] == result.id and task['eta'] == pytest.approx(eta, abs=1)
    assert cli_json(cli, 'pending', app.path) == []


@pytest.mark.parametrize('command', ['pending', 'scheduled', 'running', 'failed'])
def test_empty_listings(app, cli, command):
    code, out, err = cli(command, app.path)
    assert (code, out, err) == (0, 'no %s tasks\n' % command, '')
    assert cli_json(cli, command, app.path) == []


# -- running -----------------------------------------------------------------------------------
def test_running_shows_owner_since_attempts_and_liveness(app, cli):
    result = app.module.add(1, 2)
    before = time.time()
    task = app.queue.dequeue()
    assert task.id == result.id
    owner = app.queue.storage.owner_id
    code, out, err = cli('running', app.path)
    assert code == 0 and err == ''
    assert out.splitlines()[0].split() == ['row', 'id', 'name', 'args', 'owner', 'since',
                                           'attempts', 'recoveries', 'alive']
    (row,) = data_rows(out)
    assert result.id in row and ' add ' in row and owner in row
    assert row.split()[-3:] == ['1', '0', 'yes']
    (item,) = cli_json(cli, 'running', app.path)
    assert item['id'] == result.id and item['name'] == 'add' and item['args'] == [1, 2]
    assert item['owner'] == owner and item['owner_alive'] is True
    assert item['attempts'] == 1 and item['recoveries'] == 0
    assert before - 1 <= item['claimed_at'] <= time.time() + 1
    assert isinstance(item['row_id'], int)
    app.queue.execute(task)
    assert cli_json(cli, 'running', app.path) == []


# -- failed ------------------------------------------------------------------------------------
def test_failed_table_json_and_full_reason(app, cli):
    (letter,) = fail_for_good(app, 'one')
    code, out, err = cli('failed', app.path)
    assert code == 0 and err == ''
    assert out.splitlines()[0].split() == ['id', 'task', 'id', 'name', 'failed', 'at',
                                           'attempts', 'reason']
    (row,) = data_rows(out)
    assert row.split()[:3] == [str(letter.id), letter.task.id, 'boom']
    assert "ValueError('boom one')" in row and 'Traceback' not in row

    code, out, _ = cli('failed', app.path, '--full')
    assert 'Traceback (most recent call last)' in out and "raise ValueError('boom %s' % x)" in out

    (item,) = cli_json(cli, 'failed', app.path)
    assert item['id'] == letter.id and item['task_id'] == letter.task.id
    assert item['name'] == 'boom' and item['args'] == ['one'] and item['attempts'] == 1
    assert 'Traceback' in item['reason'] and item['failed_at'] == pytest.approx(time.time(),
                                                                                abs=60)


def test_failed_undecodable_message(app, cli):
    letter_id = app.queue.storage.add_dead_letter(b'\x00not a task', 'DeserializationError: bad')
    code, out, _ = cli('failed', app.path)
    (row,) = data_rows(out)
    assert row.split()[:3] == [str(letter_id), '-', '(undecodable)']
    assert row.endswith('DeserializationError: bad')
    (item,) = cli_json(cli, 'failed', app.path)
    assert item['id'] == letter_id and item['task_id'] is None and item['name'] is None
    assert item['reason'] == 'DeserializationError: bad'


def test_failed_limit(app, cli):
    fail_for_good(app, 1, 2, 3)
    assert len(cli_json(cli, 'failed', app.path, '--limit', '2')) == 2
    assert len(data_rows(cli('failed', app.path, '--limit', '1')[1])) == 1


# -- requeue -----------------------------------------------------------------------------------
def test_requeue_puts_the_task_back_in_the_queue(app, cli):
    first, second = fail_for_good(app, 1, 2)
    code, out, err = cli('requeue', app.path, first.id)
    assert (code, out, err) == (0, 'requeued 1 dead letter\n', '')
    assert [dead.id for dead in app.queue.failed()] == [second.id]
    (task,) = app.queue.pending()
    assert (task.name, task.args) == ('boom', (1,))
    assert cli_json(cli, 'requeue', app.path, '--all') == {'requeued': 1, 'ids': None}
    assert [t.args for t in app.queue.pending()] == [(1,), (2,)]
    assert app.queue.failed() == []


def test_requeue_unknown_id_requeues_nothing(app, cli):
    (letter,) = fail_for_good(app, 1)
    code, out, err = cli('requeue', app.path, letter.id, 999, 1234)
    assert code == 1 and out == ''
    assert err.startswith('sqlq: error: ') and '999, 1234' in err and len(err.splitlines()) == 1
    assert [dead.id for dead in app.queue.failed()] == [letter.id] and app.queue.pending() == []


@pytest.mark.parametrize('argv', [('abc',), ('1.5',), ('-3',), (), ('1', '--all')])
def test_requeue_and_purge_usage_errors(app, cli, argv):
    fail_for_good(app, 1)
    for command in ('requeue', 'purge'):
        code, out, err = cli(command, app.path, *argv)
        assert code == 2 and out == '' and 'usage: sqlq %s' % command in err
    assert len(app.queue.failed()) == 1 and app.queue.pending() == []


# -- purge -------------------------------------------------------------------------------------
def test_purge_removes_dead_letters(app, cli):
    first, second, third = fail_for_good(app, 1, 2, 3)
    code, out, err = cli('purge', app.path, first.id, third.id)
    assert (code, out, err) == (0, 'purged 2 dead letters\n', '')
    assert [dead.id for dead in app.queue.failed()] == [second.id]
    code, out, err = cli('purge', app.path, first.id)
    assert code == 1 and str(first.id) in err
    assert cli_json(cli, 'purge', app.path, '--all') == {'purged': 1, 'ids': None}
    assert app.queue.failed() == [] and app.queue.pending() == []
    assert cli('purge', app.path, '--all')[1] == 'purged 0 dead letters\n'


# -- revoke ------------------------------------------------------------------------------------
def test_revoke_then_executing_the_task_skips_it(app, cli):
    revoked = app.module.add(1, 2)
    kept = app.module.add(3, 4)
    scheduled = app.module.add.schedule((5, 6), delay=3600)
    code, out, err = cli('revoke', app.path, revoked.id, scheduled.id)
    assert code == 0 and err == ''
    assert out.splitlines() == ['revoked 2 tasks:', '  %s (pending)' % revoked.id,
                                '  %s (scheduled)' % scheduled.id]
    ran = []
    while True:
        task = app.queue.dequeue()
        if task is None:
            break
        ran.append((task.id, app.queue.execute(task)))
    assert ran == [(revoked.id, None), (kept.id, 7)]
    assert revoked.get() is None and kept.get() == 7
    assert app.queue.is_revoked(scheduled.id)


def test_revoke_once_and_running_tasks(app, cli):
    result = app.module.add(1, 2)
    task = app.queue.dequeue()
    data = cli_json(cli, 'revoke', app.path, result.id, '--once')
    assert data == {'revoked': [{'id': result.id, 'state': 'running'}], 'once': True}
    app.queue.interrupt(task)               # back to the queue: the revoked run is skipped
    task = app.queue.dequeue()
    assert app.queue.execute(task) is None
    assert not app.queue.is_revoked(result.id)   # only once


def test_revoke_unknown_id_revokes_nothing(app, cli):
    known = app.module.add(1, 2)
    code, out, err = cli('revoke', app.path, known.id, 'no-such-task')
    assert code == 1 and out == ''
    assert err.startswith('sqlq: error: ') and 'no-such-task' in err and known.id not in err
    assert not app.queue.is_revoked(known.id)
    task = app.queue.dequeue()
    assert app.queue.execute(task) == 3


def test_revoke_finished_task_is_unknown(app, cli):
    result = app.module.add(1, 2)
    app.queue.execute(app.queue.dequeue())
    code, _, err = cli('revoke', app.path, result.id)
    assert code == 1 and result.id in err


def test_revoke_needs_a_task_id(app, cli):
    code, _, err = cli('revoke', app.path)
    assert code == 2 and 'usage: sqlq revoke' in err


# -- vacuum ------------------------------------------------------------------------------------
def test_vacuum_reports_sizes(app, cli):
    app.module.echo.map([('x' * 2000,) for _ in range(200)])
    app.queue.flush()
    data = cli_json(cli, 'vacuum', app.path)
    before = data['db_size_before'] + data['wal_size_before']
    after = data['db_size_after'] + data['wal_size_after']
    assert data['db_size_before'] > 0 and 0 < after <= before
    assert data['wal_size_after'] == 0        # checkpointed: the space is given back
    code, out, err = cli('vacuum', app.path)
    assert code == 0 and err == '' and out.startswith('database size: ')
    assert '->' in out


# -- bad queue names ---------------------------------------------------------------------------
@pytest.mark.parametrize('command', ['stats', 'pending', 'scheduled', 'running', 'failed',
                                     'vacuum', 'revoke', 'requeue', 'purge'])
def test_bad_queue_path_is_one_line_exit_2(app, cli, command):
    extra = {'revoke': ('some-id',), 'requeue': ('--all',), 'purge': ('--all',)}.get(command, ())
    for path, message in [('nosuchmodule_xyz.queue', "cannot import module 'nosuchmodule_xyz'"),
                          (app.name + '.missing', "has no attribute 'missing'"),
                          (app.name + '.not_a_queue', 'is a int, not a sqlq queue'),
                          ('noattribute', 'expected module.attribute')]:
        code, out, err = cli(command, path, *extra)
        assert code == 2 and out == ''
        assert err.startswith('sqlq: error: ') and message in err and len(err.splitlines()) == 1


# -- the real command --------------------------------------------------------------------------
def run_sqlq(cwd, *args):
    env = dict(os.environ, PYTHONPATH=ROOT_DIR)
    return subprocess.run([sys.executable, '-m', 'sqlq'] + list(args), cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.subprocess
def test_help_lists_every_command_on_one_line():
    proc = run_sqlq(ROOT_DIR, '--help')
    assert proc.returncode == 0
    for command in ('consume', 'stats', 'pending', 'scheduled', 'running', 'failed', 'requeue',
                    'revoke', 'purge', 'vacuum'):
        (line,) = [text for text in proc.stdout.splitlines() if text.split()[:1] == [command]]
        assert len(line.split()) > 1, line      # its help on the same line


@pytest.mark.subprocess
def test_subprocess_json_and_errors(app):
    first = app.module.add(1, 2)
    proc = run_sqlq(app.tmp, 'pending', app.path, '--json')
    assert proc.returncode == 0, proc.stderr
    assert [t['id'] for t in json.loads(proc.stdout)] == [first.id]
    proc = run_sqlq(app.tmp, 'stats', app.path)
    assert proc.returncode == 0 and 'pending' in proc.stdout
    proc = run_sqlq(app.tmp, 'revoke', app.path, 'nope')
    assert proc.returncode == 1 and proc.stdout == '' and 'nope' in proc.stderr
    proc = run_sqlq(app.tmp, 'stats', 'missing_module.queue')
    assert proc.returncode == 2
    assert proc.stderr == "sqlq: error: cannot import module 'missing_module': " \
                          "No module named 'missing_module'\n"
