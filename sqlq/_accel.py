"""The ONE place that chooses the compiled fast path or its pure-Python twin.

At import: the compiled ``sqlq._fastpath`` unless ``SQLQ_NO_EXTENSIONS=1`` is set or it does
not import, else ``sqlq._fastpath_py``. Falling back because the compiled module did not import
(and ``SQLQ_NO_EXTENSIONS=1`` is not set) emits one :class:`FastPathUnavailableWarning`.

Call through this module (``_accel.encode_message(...)``, never
``from sqlq._accel import encode_message``) so that :func:`use` takes effect everywhere.
"""
from __future__ import annotations

import importlib
import os
import warnings
from typing import Optional

from sqlq import _fastpath_py

__all__ = ['encode_message', 'encode_messages', 'decode_message', 'ClaimBuffer',
           'new_task_id', 'new_task_ids', 'IMPLEMENTATION',
           'IMPLEMENTATIONS', 'compiled_available', 'compiled_import_error', 'use',
           'FastPathUnavailableWarning']

IMPLEMENTATIONS = ('compiled', 'twin')

_compiled = None
_compiled_error: Optional[str] = None
try:
    # import_module, not `from sqlq import _fastpath`: its error names the missing module
    # instead of blaming a circular import when sqlq/__init__ is still initializing.
    _compiled = importlib.import_module('sqlq._fastpath')
except ImportError as exc:  # not built (or built for another interpreter / _wire layout)
    _compiled_error = '%s: %s' % (type(exc).__name__, exc)


def compiled_available() -> bool:
    """True if the compiled ``sqlq._fastpath`` imported (whatever ``SQLQ_NO_EXTENSIONS`` says)."""
    return _compiled is not None


def compiled_import_error() -> Optional[str]:
    """Why the compiled module did not import, or None if it did."""
    return _compiled_error


class FastPathUnavailableWarning(RuntimeWarning):
    """sqlq runs on the pure-Python twin because the compiled ``sqlq._fastpath`` did not import.

    A RuntimeWarning, not an ImportWarning: Python hides ImportWarning by default, and a slower
    sqlq is a surprise worth seeing.
    """


class CompiledUnavailableError(ImportError):
    """``use('compiled')`` was asked for but ``sqlq._fastpath`` is not importable."""


def use(name: str) -> None:
    """Rebind the fast-path functions and classes (``__all__``) and ``IMPLEMENTATION`` to
    ``name``.

    ``name`` is 'compiled' or 'twin'; for tests and benchmarks.
    """
    global encode_message, encode_messages, decode_message, ClaimBuffer, new_task_id
    global new_task_ids, IMPLEMENTATION
    if name == 'compiled':
        if _compiled is None:
            raise CompiledUnavailableError(
                'compiled sqlq._fastpath is unavailable (%s); build it with '
                "`pip install -e .` (needs a C compiler)" % _compiled_error)
        module = _compiled
    elif name == 'twin':
        module = _fastpath_py
    else:
        raise ValueError('unknown fast-path implementation %r (expected one of %s)'
                         % (name, ', '.join(IMPLEMENTATIONS)))
    encode_message = module.encode_message
    encode_messages = module.encode_messages
    decode_message = module.decode_message
    ClaimBuffer = module.ClaimBuffer
    new_task_id = module.new_task_id
    new_task_ids = module.new_task_ids
    IMPLEMENTATION = name


encode_message = _fastpath_py.encode_message
encode_messages = _fastpath_py.encode_messages
decode_message = _fastpath_py.decode_message
ClaimBuffer = _fastpath_py.ClaimBuffer
new_task_id = _fastpath_py.new_task_id
new_task_ids = _fastpath_py.new_task_ids
IMPLEMENTATION = 'twin'
if os.environ.get('SQLQ_NO_EXTENSIONS') != '1':
    if _compiled is not None:
        use('compiled')
    else:
        # Once per process: this runs at the module's (only) import. A user who wants the twin
        # says so with SQLQ_NO_EXTENSIONS=1, which also silences this.
        warnings.warn(FastPathUnavailableWarning(
            'sqlq is using its pure-Python twin of the fast path, which is slower: the '
            'compiled sqlq._fastpath did not import (%s). Reinstall sqlq where a C compiler '
            'is available (pip install --force-reinstall --no-cache-dir sqlq, or pip install '
            '-e . in a checkout); set SQLQ_NO_EXTENSIONS=1 to choose the twin and silence this '
            'warning.' % _compiled_error), stacklevel=2)
