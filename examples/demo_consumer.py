"""Runs a consumer for the demo: ``sqlq consume demo.queue`` when the CLI is available,
otherwise a worker thread draining the queue through the same public API."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from typing import Iterator


@contextlib.contextmanager
def run_consumer(db_path: str) -> Iterator[None]:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import sqlq.cli  # noqa: F401
        has_cli = True
    except ImportError:
        has_cli = False
    if has_cli:
        env = dict(os.environ, SQLQ_DEMO_DB=db_path)
        proc = subprocess.Popen([sys.executable, '-m', 'sqlq', 'consume', 'demo.queue',
                                 '-w', '2', '-k', 'process'], cwd=here, env=env)

        def wait(result, timeout=30.0):
            """The result's value, waiting while the consumer runs (bounded)."""
            from sqlq import ResultTimeout
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return result.get(blocking=True, timeout=0.5)
                except ResultTimeout:
                    if proc.poll() is not None:
                        raise SystemExit('the consumer exited with status %s'
                                         % proc.returncode) from None
                    if time.monotonic() > deadline:
                        raise
        try:
            yield wait
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        return
    import demo
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            for task in demo.queue.read_schedule():
                demo.queue.enqueue(task)
            task = demo.queue.dequeue()
            if task is None:
                demo.queue.wait_for_change(0.05)
                continue
            demo.queue.execute(task)

    worker = threading.Thread(target=drain, name='demo-worker', daemon=True)
    worker.start()
    try:
        yield lambda result: result.get(blocking=True, timeout=30)
    finally:
        stop.set()
        worker.join(timeout=30)
