"""Fixtures of the dashboard tests: a SQLite queue with a few tasks, the dashboard served on a
free loopback port from a thread, and (for the browser tests) headless Chromium driven by
selenium through Debian's chromedriver."""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterator

import pytest

from sqlq import SqliteQueue
from sqlq.web import make_server

CHROMIUM = os.environ.get('SQLQ_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('SQLQ_CHROMEDRIVER', '/usr/bin/chromedriver')
#: Chromium's flags: headless, as root, and quiet on a machine without internet access.
CHROMIUM_FLAGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
                  '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--window-size=1280,1000')


def make_app(path: str, name: str = 'web', **options: Any) -> SqliteQueue:
    queue = SqliteQueue(path, name=name, **options)

    @queue.task(name='app.add')
    def add(a, b):
        return a + b

    @queue.task(name='app.boom')
    def boom(x):
        raise ValueError('boom %s' % x)

    @queue.task(name='app.echo')
    def echo(*args, **kwargs):
        return args

    return queue


@pytest.fixture
def web_queue(tmp_path: Any) -> Iterator[SqliteQueue]:
    queue = make_app(str(tmp_path / 'web.db'))
    yield queue
    queue.close()


@pytest.fixture
def server(web_queue: SqliteQueue) -> Iterator[Any]:
    """The dashboard of ``web_queue`` (another SqliteQueue on the same file: the dashboard
    reads through its own connections, as ``sqlq web`` in another process does)."""
    viewer = make_app(web_queue.storage.filename)  # type: ignore[attr-defined]
    srv = make_server(viewer, '127.0.0.1', 0)
    thread = srv.serve_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)
    viewer.close()


@pytest.fixture(scope='session')
def browser() -> Iterator[Any]:
    """Headless Chromium (one for the session). Skipped where Chromium or its driver is
    missing -- except in CI (CI=true), where .ci/run installs them: there it fails."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append('selenium')
    if missing:
        if os.environ.get('CI'):
            pytest.fail('the browser tests need %s (.ci/run installs them)' % ', '.join(missing))
        pytest.skip('the browser tests need %s' % ', '.join(missing))
    profile = tempfile.mkdtemp(prefix='sqlq-chromium-')
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + ('--user-data-dir=' + profile,):
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    os.environ.setdefault('SE_AVOID_STATS', 'true')
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
