"""sqlq.contrib.flask with a real Flask application (``flask_app.py``): configuration from
``app.config``, tasks in the application's context, ``flask sqlq consume``."""
from __future__ import annotations

import os
import sys

import pytest

from tests.contrib._projects import Project

flask = pytest.importorskip('flask', reason="Flask is not installed (pip install 'sqlq[flask]')")

from tests.contrib import flask_app  # noqa: E402


@pytest.fixture
def app(tmp_path):
    application = flask_app.create_app(SQLQ_FILENAME=str(tmp_path / 'queue.sqlite3'))
    yield application
    application.extensions['sqlq'].queue.close()


def test_configured_from_app_config(app, tmp_path):
    queue = app.extensions['sqlq'].queue
    assert queue.name == 'flaskshop' and queue.filename == str(tmp_path / 'queue.sqlite3')
    assert not queue.immediate
    assert 'tests.contrib.flask_app.greet' in queue.registered_task_names()


def test_immediate_mode_runs_in_the_callers_context(tmp_path):
    app = flask_app.create_app(SQLQ_FILENAME=str(tmp_path / 'q.sqlite3'), SQLQ_IMMEDIATE=True,
                               GREETING='Hi')
    with app.test_request_context():
        flask.g.last_name = 'caller'
        value = flask_app.greet('Ada').get()
    assert value == {'greeting': 'Hi, Ada', 'app': 'flaskshop', 'g_before': 'caller',
                     'pid': os.getpid()}
    # Outside any context, a run gets one of its own.
    assert flask_app.greet('Bob').get()['g_before'] is None
    app.extensions['sqlq'].queue.close()


def test_a_task_used_before_init_app_says_so():
    from sqlq.contrib.flask import Sqlq
    ext = Sqlq()

    @ext.task()
    def orphan():
        return 1
    with pytest.raises(RuntimeError, match=r'init_app\(app\)'):
        orphan()
    assert orphan.call_local() == 1


def test_the_queue_file_cannot_be_the_sqlalchemy_database(tmp_path):
    db = tmp_path / 'app.db'
    with pytest.raises(ValueError, match='is the SQLite file of SQLALCHEMY_DATABASE_URI'):
        flask_app.create_app(SQLQ_FILENAME=str(db), SQLALCHEMY_DATABASE_URI='sqlite:///%s' % db)


def test_bad_consumer_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"SQLQ_CONSUMER\['worker_type'\] must be one of"):
        flask_app.create_app(SQLQ_FILENAME=str(tmp_path / 'q.sqlite3'),
                             SQLQ_CONSUMER={'worker_type': 'fibre'})


def test_flask_sqlq_consume_help(app):
    result = app.test_cli_runner().invoke(args=['sqlq', 'consume', '--help'])
    assert result.exit_code == 0, result.output
    assert 'sqlq consume' in result.output  # argparse's help, under click's command path
    for option in ('--workers', '--worker-type', '--verbose', '--logfile'):
        assert option in result.output


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_request_enqueues_and_flask_sqlq_consume_runs_it(app, tmp_path):
    project = Project(tmp_path, SQLQ_TEST_DB=str(tmp_path / 'queue.sqlite3'))
    try:
        consumer = project.start_consumer([
            sys.executable, '-m', 'flask', '--app', 'tests.contrib.flask_app:create_app',
            'sqlq', 'consume', '-w', '2'])
        assert '2 thread worker(s)' in consumer.log()  # -w overrides SQLQ_CONSUMER
        client = app.test_client()
        ids = [client.post('/greet/%s' % name).get_json()['id'] for name in ('Ada', 'Bob')]
        queue = app.extensions['sqlq'].queue
        values = [queue.result(id, blocking=True, timeout=30) for id in ids]
        assert os.getpid() not in {value.pop('pid') for value in values}  # the consumer ran them
        # Each run had the app's config and a fresh context (g empty at its start).
        assert values == [{'greeting': 'Hello, %s' % name, 'app': 'flaskshop',
                           'g_before': None} for name in ('Ada', 'Bob')]
    finally:
        project.close()
