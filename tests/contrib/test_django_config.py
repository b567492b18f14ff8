"""The ``SQLQ`` setting (sqlq.contrib.django._config): the queue it describes, its defaults,
and the refusal of a queue file that is one of Django's SQLite databases. Plain dictionaries:
no Django settings are configured."""
from __future__ import annotations

import os

import pytest

from sqlq import RedisQueue, SqliteQueue
from sqlq.contrib._consume import apply_consumer_settings, consumer_parser
from sqlq.contrib.django._config import ConfigError, resolve


def sqlite(name, **extra):
    return dict({'ENGINE': 'django.db.backends.sqlite3', 'NAME': name}, **extra)


def test_the_queue_file_defaults_to_one_beside_the_sqlite_database(tmp_path):
    config = resolve(None, {'default': sqlite(tmp_path / 'db.sqlite3')}, debug=True)
    assert config.queue_class is SqliteQueue
    assert config.kwargs == {'filename': str(tmp_path / 'db-queue.sqlite3'), 'name': 'sqlq',
                             'immediate': True}  # immediate: DEBUG's value
    queue = config.build()
    try:
        assert queue.filename == str(tmp_path / 'db-queue.sqlite3') and queue.immediate
    finally:
        queue.close()


def test_without_an_sqlite_database_the_file_goes_in_base_dir(tmp_path):
    postgres = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'shop'}}
    config = resolve({'immediate': False}, postgres, base_dir=tmp_path)
    assert config.kwargs['filename'] == str(tmp_path / 'sqlq.sqlite3')
    assert not config.kwargs['immediate']
    with pytest.raises(ConfigError, match="needs a 'filename'"):
        resolve({}, postgres)


@pytest.mark.parametrize('how', ['same path', 'relative path', 'symbolic link', 'hard link',
                                 'TEST name', 'other alias', 'uri'])
def test_a_queue_file_that_is_a_django_database_is_refused(tmp_path, monkeypatch, how):
    db = tmp_path / 'db.sqlite3'
    db.write_bytes(b'')
    databases = {'default': sqlite(db)}
    queue_file = str(db)
    if how == 'relative path':
        monkeypatch.chdir(tmp_path)
        queue_file = 'db.sqlite3'
    elif how == 'symbolic link':
        os.symlink(db, tmp_path / 'link.sqlite3')
        queue_file = str(tmp_path / 'link.sqlite3')
    elif how == 'hard link':
        os.link(db, tmp_path / 'hard.sqlite3')
        queue_file = str(tmp_path / 'hard.sqlite3')
    elif how == 'TEST name':
        databases = {'default': sqlite(tmp_path / 'x.sqlite3', TEST={'NAME': str(db)})}
    elif how == 'other alias':
        databases = {'default': sqlite(':memory:'), 'archive': sqlite(db)}
    elif how == 'uri':
        databases = {'default': sqlite('file:%s?mode=rw' % db, OPTIONS={'uri': True})}
    with pytest.raises(ConfigError) as info:
        resolve({'filename': queue_file}, databases)
    message = str(info.value)
    assert 'is the SQLite file of Django\'s DATABASES[' in message
    assert 'two copies of SQLite' in message and 'on_commit_task' in message
    assert not os.path.exists(str(db) + '-wal')  # nothing was opened


def test_a_queue_object_on_a_django_database_is_refused(tmp_path):
    queue = SqliteQueue(str(tmp_path / 'q.sqlite3'))
    try:
        assert resolve(queue, {'default': sqlite(tmp_path / 'db.sqlite3')}).build() is queue
        with pytest.raises(ConfigError, match='is the SQLite file'):
            resolve(queue, {'default': sqlite(tmp_path / 'q.sqlite3')})
    finally:
        queue.close()


def test_in_memory_databases_share_no_file(tmp_path):
    databases = {'default': sqlite(':memory:'), 'm': sqlite('file:m?mode=memory&cache=shared')}
    config = resolve({'filename': str(tmp_path / 'q.sqlite3')}, databases)
    assert config.kwargs['filename'] == str(tmp_path / 'q.sqlite3')


def test_redis_by_url_or_connection():
    config = resolve({'url': 'redis://localhost:6379/3', 'name': 'app'}, {})
    assert config.queue_class is RedisQueue
    assert config.kwargs == {'url': 'redis://localhost:6379/3', 'name': 'app',
                             'immediate': False}
    config = resolve({'connection': {'host': 'h', 'port': 7}, 'results': False}, {})
    assert config.queue_class is RedisQueue
    assert config.kwargs == {'host': 'h', 'port': 7, 'results': False, 'name': 'sqlq',
                             'immediate': False}
    with pytest.raises(ConfigError, match=r"SQLQ\['filename'\] is for SQLite queues"):
        resolve({'url': 'redis://h', 'filename': 'q.db'}, {})
    assert resolve({'queue_class': 'sqlq.MemoryQueue'}, {}).queue_class.__name__ == \
        'MemoryQueue'


def test_consumer_settings_are_the_default_options(tmp_path):
    settings = {'workers': 4, 'worker_type': 'process', 'periodic': False,
                'check_worker_health': False, 'extra_locks': ['a', 'b'],
                'scheduler_interval': 2, 'graceful_signal': 'SIGTERM'}
    config = resolve({'consumer': settings}, {'default': sqlite(tmp_path / 'db.sqlite3')})
    parser = consumer_parser('test')
    apply_consumer_settings(parser, config.consumer, "SQLQ['consumer']")
    args = parser.parse_args([])
    assert (args.workers, args.worker_type, args.no_periodic, args.disable_health_check,
            args.extra_locks, args.scheduler_interval) == (4, 'process', True, True, 'a,b', 2.0)
    assert args.graceful_signal == 15
    assert parser.parse_args(['-w', '2', '-k', 'thread']).workers == 2  # the command line wins


@pytest.mark.parametrize('consumer, error', [
    ({'workerz': 2}, "unknown key 'workerz'; known: "),
    ({'workers': 0}, 'must be a positive integer'),
    ({'worker_type': 'fibre'}, "'worker_type'] must be one of thread, process, greenlet"),
    ({'periodic': 'no'}, "'periodic'] must be True or False"),
    ({'verbose': 1}, "'verbose'] must be True or False"),
])
def test_bad_consumer_settings_are_refused(tmp_path, consumer, error):
    with pytest.raises(ConfigError, match=r'SQLQ\[\'consumer\'\]') as info:
        resolve({'consumer': consumer}, {'default': sqlite(tmp_path / 'db.sqlite3')})
    assert error in str(info.value)


def test_framework_queue_names_map_to_sqlq_queues_and_result_ids_name_them():
    pytest.importorskip('django', reason="Django is not installed (pip install 'sqlq[django]')")
    from sqlq.contrib.django._queues import queue_name_of, result_id, sqlq_name
    assert sqlq_name('shop', 'default') == 'shop'  # the project's queue, as before
    assert sqlq_name('shop', 'emails') == 'shop.emails'
    assert result_id('default') is None  # sqlq's own id: a plain one
    made = result_id('mail:bulk')
    assert made is not None and made.startswith('mail:bulk:')
    assert queue_name_of(made) == 'mail:bulk'  # a queue name may hold the separator
    assert queue_name_of('0192b8c3-7d4e-7f00-8000-000000000000') == 'default'
