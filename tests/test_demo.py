"""The README's first command runs examples/demo.py: what it prints must stay true."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

DEMO = pathlib.Path(__file__).resolve().parent.parent / 'examples' / 'demo.py'


def test_demo_runs_every_task_with_a_real_consumer(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, SQLQ_DEMO_DB=str(tmp_path / 'demo.db'))
    proc = subprocess.run([sys.executable, str(DEMO)], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    shown = 'the demo printed:\n%s\nand on stderr:\n%s' % (proc.stdout, proc.stderr[-3000:])
    assert 'map     : %s' % [i + i * 10 for i in range(20)] in lines, shown
    assert 'pipeline: [3, 103]' in lines, shown
    assert 'chord   : 20' in lines, shown
    assert 'delayed : 42' in lines, shown
    # the retry ran and its value shows
    assert 'retried : flaky(1) ok after a retry' in lines, shown
    assert lines[-1].endswith('pending=0 scheduled=0'), shown  # nothing left behind
    # The consumer writes to stderr only, so nothing it runs can split a report line.
    reports = ('enqueued ', 'map     : ', 'pipeline: ', 'chord   : ', 'delayed : ',
               'retried : ', 'all done in ')
    assert [line for line in lines if not line.startswith(reports)] == [], shown
