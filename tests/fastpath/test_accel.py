"""sqlq._accel: the one switch between the compiled fast path and its pure twin."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlq import _accel, _fastpath_py
from tests._helpers import ROOT_DIR, require_compiled

ROOT = Path(ROOT_DIR)
REQUIRE = os.environ.get('SQLQ_REQUIRE_EXTENSIONS') == '1'

PROBE = ('import json, sqlq._accel as a; print(json.dumps([a.IMPLEMENTATION, '
         'a.compiled_available(), a.compiled_import_error(), a.encode_message.__module__]))')


def probe(env_changes, prelude=''):
    """Import sqlq._accel in a fresh interpreter; return what it chose."""
    env = dict(os.environ)
    env.pop('SQLQ_NO_EXTENSIONS', None)
    env.update(env_changes)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
    proc = subprocess.run([sys.executable, '-c', prelude + PROBE], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def restore_accel():
    previous = _accel.IMPLEMENTATION
    yield
    _accel.use(previous)


def test_required_extension_is_built():
    if not REQUIRE:
        pytest.skip('only checked with SQLQ_REQUIRE_EXTENSIONS=1 (as CI runs)')
    import sqlq._fastpath  # noqa: F401  (fails loudly if the build was skipped)
    assert _accel.compiled_available()
    assert _accel.compiled_import_error() is None


@pytest.mark.subprocess
def test_no_extensions_env_forces_twin():
    impl, available, error, module = probe({'SQLQ_NO_EXTENSIONS': '1'})
    assert impl == 'twin'
    assert module == 'sqlq._fastpath_py'
    assert available == _accel.compiled_available()   # still importable, just not chosen


@pytest.mark.subprocess
def test_default_picks_compiled_when_built():
    require_compiled()
    assert probe({}) == ['compiled', True, None, 'sqlq._fastpath']
    # Only the value '1' disables the extension.
    assert probe({'SQLQ_NO_EXTENSIONS': '0'})[0] == 'compiled'


@pytest.mark.subprocess
def test_failed_import_falls_back_to_twin():
    block = ('import sys\n'
             'class Block:\n'
             '    def find_spec(self, name, path=None, target=None):\n'
             '        if name == "sqlq._fastpath":\n'
             '            raise ImportError("blocked by test")\n'
             'sys.meta_path.insert(0, Block())\n')
    impl, available, error, module = probe({}, prelude=block)
    assert (impl, available, module) == ('twin', False, 'sqlq._fastpath_py')
    assert error == 'ImportError: blocked by test'


def test_use_twin_rebinds_module_globals(restore_accel):
    _accel.use('twin')
    assert _accel.IMPLEMENTATION == 'twin'
    assert _accel.encode_message is _fastpath_py.encode_message
    assert _accel.decode_message is _fastpath_py.decode_message


def test_use_compiled_rebinds_module_globals(restore_accel):
    require_compiled()
    from sqlq import _fastpath
    _accel.use('twin')
    _accel.use('compiled')
    assert _accel.IMPLEMENTATION == 'compiled'
    assert _accel.encode_message is _fastpath.encode_message
    assert _accel.decode_message is _fastpath.decode_message
    fields = ('i', 'n', b'p', 1, 2, 3.0, 4.0, None, None, None, None, None, b'x', b't')
    assert _accel.decode_message(_accel.encode_message(*fields)) == fields


def test_use_unknown_name_is_value_error_and_changes_nothing(restore_accel):
    _accel.use('twin')
    with pytest.raises(ValueError, match="unknown fast-path implementation 'cython'"):
        _accel.use('cython')
    assert _accel.IMPLEMENTATION == 'twin'
    assert _accel.encode_message is _fastpath_py.encode_message


def test_use_compiled_when_unavailable_is_import_error(restore_accel, monkeypatch):
    _accel.use('twin')
    monkeypatch.setattr(_accel, '_compiled', None)
    monkeypatch.setattr(_accel, '_compiled_error', 'ImportError: not built')
    assert not _accel.compiled_available()
    with pytest.raises(ImportError, match='unavailable .ImportError: not built.'):
        _accel.use('compiled')
    assert _accel.IMPLEMENTATION == 'twin'
    assert _accel.encode_message is _fastpath_py.encode_message
