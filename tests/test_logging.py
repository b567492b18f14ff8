"""The consumer's background log handler: nothing lost, order kept, forked children log too."""
from __future__ import annotations

import logging
import os

from sqlq._logging import BackgroundHandler


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
    assert [l.split(' ', 1)[1] for l in lines] == ['line %d' % i for i in range(200)]
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
