"""The consumer's background log handler: nothing lost, order kept, forked children log too."""
from __future__ import annotations

import io
import logging
import os
import time

import pytest

from sqlq._logging import BackgroundHandler, ConsumerFormatter, line_logger


def make_logger(path, name):
    target = logging.FileHandler(str(path))
    handler = BackgroundHandler(target)
    handler.setFormatter(logging.Formatter('%(process)d %(message)s'))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def test_records_are_written_in_order_by_flush(tmp_path):
    logger, handler = make_logger(tmp_path / 'log.txt', 'sqlq.test.order')
    for i in range(200):
        logger.info('line %d', i)
    handler.flush()
    lines = (tmp_path / 'log.txt').read_text().splitlines()
    assert [line.split(' ', 1)[1] for line in lines] == ['line %d' % i for i in range(200)]
    handler.close()


def test_exceptions_are_formatted_where_they_were_logged(tmp_path):
    logger, handler = make_logger(tmp_path / 'log.txt', 'sqlq.test.exc')
    try:
        raise ValueError('boom')
    except ValueError:
        logger.exception('failed')
    handler.flush()
    text = (tmp_path / 'log.txt').read_text()
    assert 'failed' in text and 'ValueError: boom' in text
    handler.close()


@pytest.mark.subprocess
def test_a_forked_child_writes_its_lines_before_exiting(tmp_path):
    logger, handler = make_logger(tmp_path / 'log.txt', 'sqlq.test.fork')
    logger.info('parent before')
    pid = os.fork()
    if pid == 0:  # child: its writer thread is re-created after fork
        try:
            logger.info('child line')
            handler.flush()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    logger.info('parent after')
    handler.flush()
    text = (tmp_path / 'log.txt').read_text()
    assert 'child line' in text and 'parent before' in text and 'parent after' in text
    handler.close()


# ---------------------------------------------------------------------- per-task lines

def record_at(monkeypatch, created, levelno, name, text, thread, process):
    """A LogRecord made by logging itself at ``created`` (its own msecs arithmetic)."""
    with monkeypatch.context() as patch:
        patch.setattr(time, 'time', lambda: created)
        patch.setattr(time, 'time_ns', lambda: int(created * 1e9))
        record = logging.LogRecord(name, levelno, __file__, 1, '%s', (text,), None)
    record.threadName, record.processName = thread, process
    return record


@pytest.fixture
def india_time():
    """A local time zone off UTC by a fraction of an hour (no tz database needed)."""
    old = os.environ.get('TZ')
    os.environ['TZ'] = 'IST-5:30'
    time.tzset()
    yield
    if old is None:
        del os.environ['TZ']
    else:
        os.environ['TZ'] = old
    time.tzset()


@pytest.mark.parametrize('simple', [False, True])
def test_format_line_is_what_format_gives_the_equivalent_record(monkeypatch, india_time,
                                                                  simple):
    formatter = ConsumerFormatter(simple=simple)
    cases = [
        (1700000000.0, logging.INFO, 'sqlq.worker', 'Executing add: 1', 'w-1', 'MainProcess'),
        (1700000000.9996, logging.INFO, 'sqlq.worker', 'done in 0.001s', 'w-1', 'MainProcess'),
        (1700000000.0011, logging.WARNING, 'sqlq', '100% %s %(x)s', 'Thread-7', 'Process-2'),
        (1700000001.5, logging.ERROR, 'app.tasks', 'caf\u00e9 \u2713', 'w-2', 'Worker-1'),
        (1700000000.25, 25, 'sqlq.worker', 'custom level', 'w-1', 'MainProcess'),  # cached second
        (86399.999, logging.DEBUG, 'x', '', 'MainThread', 'MainProcess'),
    ]
    for created, levelno, name, text, thread, process in cases:
        record = record_at(monkeypatch, created, levelno, name, text, thread, process)
        expected = formatter.format(record)
        assert formatter.format_line(created, levelno, name, text, thread, process) == expected
    assert ConsumerFormatter().format_line(*cases[0]).startswith('[2023-11-15 03:43:20,000] '
                                                                   'INFO:sqlq.worker:')


def _background_logger(name, stream, *extra_handlers):
    target = logging.StreamHandler(stream)
    handler = BackgroundHandler(target)
    handler.setFormatter(ConsumerFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler, *extra_handlers]
    logger.filters[:] = []
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_line_logger_is_none_when_the_level_is_disabled():
    logger = logging.getLogger('sqlq.test.line.disabled')
    logger.setLevel(logging.WARNING)
    assert line_logger(logger, logging.INFO) is None
    assert line_logger(logger, logging.WARNING) is not None


def test_line_logger_queues_lines_for_a_lone_background_handler(monkeypatch):
    stream = io.StringIO()
    logger, handler = _background_logger('sqlq.test.line.fast', stream)
    try:
        queued, handled = [], []
        monkeypatch.setattr(handler, 'handle', lambda record: handled.append(record))
        real_enqueue = handler.enqueue_line
        monkeypatch.setattr(handler, 'enqueue_line',
                            lambda *args: (queued.append(args), real_enqueue(*args)))
        log = line_logger(logger, logging.INFO)
        log('Executing add: 1 %s')
        assert queued == [(logging.INFO, 'sqlq.test.line.fast', 'Executing add: 1 %s')]
        monkeypatch.undo()
        handler.flush()
        assert handled == []  # no LogRecord was built
        [line] = stream.getvalue().splitlines()
        assert line.endswith(' INFO:sqlq.test.line.fast:MainProcess:MainThread: '
                             'Executing add: 1 %s')
    finally:
        handler.close()


@pytest.mark.parametrize('setup', ['second handler', 'logger filter', 'handler filter',
                                   'propagates to root'])
def test_line_logger_falls_back_to_a_record_for_other_destinations(setup, caplog):
    stream = io.StringIO()
    user = ListHandler()
    logger, handler = _background_logger('sqlq.test.line.' + setup.replace(' ', '_'), stream,
                                         *([user] if setup == 'second handler' else []))
    try:
        if setup == 'logger filter':
            logger.addFilter(lambda record: 'secret' not in record.getMessage())
        elif setup == 'handler filter':
            handler.addFilter(lambda record: 'secret' not in record.getMessage())
        elif setup == 'propagates to root':
            logger.propagate = True
            caplog.set_level(logging.INFO)
        log = line_logger(logger, logging.INFO)
        log('done 100% %s')
        log('a secret line')
        handler.flush()
        written = stream.getvalue()
        if setup == 'second handler':
            assert [r.getMessage() for r in user.records] == ['done 100% %s', 'a secret line']
            assert all(r.levelno == logging.INFO and r.name == logger.name
                       for r in user.records)
        elif setup == 'propagates to root':
            assert [r.getMessage() for r in caplog.records if r.name == logger.name] == \
                ['done 100% %s', 'a secret line']
        if setup.endswith('filter'):
            assert 'secret' not in written  # the filter applied
        else:
            assert 'a secret line' in written
        assert 'INFO:%s:MainProcess:MainThread: done 100%% %%s' % logger.name in written
    finally:
        handler.close()
