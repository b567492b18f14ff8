"""Take the README's screenshot of the dashboard (docs/dashboard.png).

    python docs/screenshot.py [--out docs/dashboard.png]

Builds a queue in a temporary directory with an hour of history (runs recorded at the times
they would have ended, as the history stores them), some pending, scheduled and failed tasks
and a heartbeat, serves its dashboard on a free loopback port and photographs the overview
with headless Chromium (selenium and Debian's chromium + chromedriver, as the browser tests).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from sqlq.storage.types import Finished  # noqa: E402
from sqlq.web import make_server  # noqa: E402
from tests._helpers import drain  # noqa: E402
from tests.web.conftest import make_app  # noqa: E402


def fill(queue) -> None:
    rng = random.Random(16)
    now = time.time()
    runs = []
    names = {'app.send_email': (0.05, 0.03), 'app.resize_image': (0.4, 0.06),
             'app.sync_account': (1.5, 0.12)}
    for minute in range(60):
        for name, (duration, failure) in names.items():
            for _ in range(rng.randint(3, 25) if minute % 17 else rng.randint(30, 45)):
                outcome = 'failed' if rng.random() < failure else 'succeeded'
                runs.append(Finished('%s-%d' % (name, len(runs)), name, outcome,
                                     now - 3600 + minute * 60 + rng.random() * 59,
                                     rng.expovariate(1 / duration),
                                     'TimeoutError()' if outcome == 'failed' else None))
    runs.sort(key=lambda run: run.finished_at)
    queue.storage.record_finished(runs)
    add, boom = queue.registry.get('app.add'), queue.registry.get('app.boom')
    for i in range(3):
        queue.enqueue(boom((i,)))
    drain(queue)
    for i in range(42):
        queue.enqueue(add((i, i)))
    queue.heartbeat()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(HERE, 'dashboard.png'))
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from tests.web.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS
    with tempfile.TemporaryDirectory(prefix='sqlq-shot-') as tmp:
        queue = make_app(os.path.join(tmp, 'app.db'), name='app')
        fill(queue)
        server = make_server(queue, '127.0.0.1', 0)
        server.serve_in_thread()
        options = Options()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS + ('--user-data-dir=' + os.path.join(tmp, 'profile'),
                                      '--hide-scrollbars', '--window-size=1280,1000'):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.get(server.url)
            WebDriverWait(driver, 20).until(
                lambda d: d.find_elements('css selector', 'svg.chart rect'))
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
            queue.close()
    print('wrote', args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
