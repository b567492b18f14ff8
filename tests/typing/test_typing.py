"""Typing for users: ``mypy --strict`` accepts the README's examples as a user writes them
(tests/typing/readme_examples.py) and rejects a call with a wrong argument, naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._helpers import ROOT_DIR

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

HERE = os.path.dirname(os.path.abspath(__file__))

BAD = '''
import asyncio
from sqlq import MemoryQueue, Result

queue = MemoryQueue('x')

@queue.task()
def add(a: int, b: int) -> int:
    return a + b

@queue.task()
async def fetch(url: str) -> bytes:
    return url.encode()

add('one', 2)
add(1)
wrong: Result[str] = add(1, 2)
async def main() -> None:
    text: str = await fetch('u')
'''


def mypy(path, cache):
    pytest.importorskip('mypy')  # installed by the test extra
    return subprocess.run([sys.executable, '-m', 'mypy', '--strict', '--no-error-summary',
                           '--cache-dir', str(cache), path], cwd=ROOT_DIR,
                          capture_output=True, text=True, timeout=300)


def test_readme_examples_type_check_under_mypy_strict(tmp_path):
    run = mypy(os.path.join(HERE, 'readme_examples.py'), tmp_path / 'cache')
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_wrong_argument_is_a_type_error(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(BAD)
    run = mypy(str(bad), tmp_path / 'cache')
    assert run.returncode == 1, run.stdout + run.stderr
    errors = [line.split(': error: ', 1)[1] for line in run.stdout.splitlines()
              if ': error: ' in line]
    assert errors == [
        'Argument 1 to "__call__" of "TaskWrapper" has incompatible type "str"; expected '
        '"int"  [arg-type]',
        'Missing positional argument "b" in call to "__call__" of "TaskWrapper"  [call-arg]',
        'Incompatible types in assignment (expression has type "Result[int]", variable has '
        'type "Result[str]")  [assignment]',
        'Incompatible types in assignment (expression has type "bytes", variable has type '
        '"str")  [assignment]',
    ], run.stdout
