"""What a user is told about the fast path: one FastPathUnavailableWarning when sqlq falls back
to the pure-Python twin because the compiled module did not import, and ``sqlq --version``
naming the implementation in use (and why it is not the compiled one)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import sqlq
from sqlq import _accel
from tests._helpers import ROOT_DIR

BLOCK = ('import sys\n'
         'class Block:\n'
         '    def find_spec(self, name, path=None, target=None):\n'
         '        if name == "sqlq._fastpath":\n'
         '            raise ImportError("blocked by test")\n'
         'sys.meta_path.insert(0, Block())\n')
# Imports sqlq through several modules and asks for the version twice; -W always would print
# a warning as often as it is issued.
VERSION = ('import sqlq, sqlq.cli, sqlq._accel, sqlq.message\n'
           'for _ in range(2):\n'
           '    try:\n'
           '        sqlq.cli.main(["--version"])\n'
           '    except SystemExit:\n'
           '        pass\n')


def run(code, env_changes=()):
    """Run ``code`` in a fresh interpreter (warnings always shown); (stdout, stderr)."""
    env = dict(os.environ)
    env.pop('SQLQ_NO_EXTENSIONS', None)
    env.update(env_changes)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT_DIR, env.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, '-W', 'always', '-c', code], env=env, cwd=ROOT_DIR,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_warning_is_shown_by_default():
    # Python hides ImportWarning and DeprecationWarning by default, not RuntimeWarning.
    assert issubclass(_accel.FastPathUnavailableWarning, RuntimeWarning)
    assert not issubclass(_accel.FastPathUnavailableWarning, ImportWarning)


def test_failed_import_warns_once_and_version_names_the_twin():
    out, err = run(BLOCK + VERSION)
    assert err.count('FastPathUnavailableWarning') == 1, err
    assert 'pure-Python twin' in err and 'ImportError: blocked by test' in err
    assert 'SQLQ_NO_EXTENSIONS=1' in err and 'pip install' in err   # how to fix or silence it
    line = ('fast path: pure-Python twin (the compiled sqlq._fastpath did not import: '
            'ImportError: blocked by test)')
    assert out.splitlines() == ['sqlq %s' % sqlq.__version__, line] * 2


def test_no_extensions_env_chooses_the_twin_without_warning():
    out, err = run(BLOCK + VERSION, {'SQLQ_NO_EXTENSIONS': '1'})
    assert 'Warning' not in err, err
    assert out.splitlines()[1] == 'fast path: pure-Python twin (chosen by SQLQ_NO_EXTENSIONS=1)'


def test_compiled_module_in_use_without_warning():
    if not _accel.compiled_available():  # (a failure under SQLQ_REQUIRE_EXTENSIONS=1 in test_accel)
        pytest.skip('compiled sqlq._fastpath unavailable (%s)' % _accel.compiled_import_error())
    out, err = run(VERSION)
    assert 'Warning' not in err, err
    assert out.splitlines() == ['sqlq %s' % sqlq.__version__, 'fast path: compiled'] * 2


def test_version_names_a_twin_chosen_at_run_time(capsys):
    from sqlq.cli import main
    previous = _accel.IMPLEMENTATION
    _accel.use('twin')
    try:
        with pytest.raises(SystemExit) as stop:
            main(['--version'])
    finally:
        _accel.use(previous)
    assert stop.value.code == 0
    second = capsys.readouterr().out.splitlines()[1]
    assert second.startswith('fast path: pure-Python twin (')
