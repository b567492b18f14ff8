"""Build script for the optional compiled fast path ``sqlq._fastpath``.

Everything else (metadata, dependencies, package data) is in pyproject.toml. The extension is
built from ``sqlq/_fastpath.pyx`` when Cython is importable, else from the C file Cython made
of it, ``sqlq/_fastpath.c``, which every sdist ships: Cython is needed only to regenerate it.

The extension is optional: if it cannot be built the install still succeeds, sqlq runs on the
pure twin ``sqlq._fastpath_py``, and a banner on stderr says so (``sqlq._accel`` warns again at
run time). ``SQLQ_NO_EXTENSIONS=1`` at build time skips it. CI refuses that (``.ci/run``
imports ``sqlq._fastpath``, and the tests run with ``SQLQ_REQUIRE_EXTENSIONS=1``).
"""
from __future__ import annotations

import os
import sys
from typing import Any, List, Sequence

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist
from setuptools.errors import BaseError, CCompilerError

PYX_SOURCE = 'sqlq/_fastpath.pyx'
C_SOURCE = 'sqlq/_fastpath.c'
COMPILER_DIRECTIVES = {
    'language_level': 3,
    'boundscheck': False,   # every index is checked by hand against the size
    'wraparound': False,    # no negative indexing in the module
    'initializedcheck': False,
}


COMPILER_FIX = (
    'install a C compiler and the Python headers (Debian/Ubuntu: build-essential python3-dev;',
    'macOS: xcode-select --install; Windows: Microsoft C++ Build Tools), then reinstall:',
    '    pip install --force-reinstall --no-cache-dir sqlq',
)
CYTHON_FIX = (
    'install Cython (pip install Cython) and build again, or install from an sdist',
    '(it ships the C file).',
)


def warn_not_built(reason: str, fix: Sequence[str] = COMPILER_FIX) -> None:
    """A banner saying that sqlq installs without its compiled fast path, and how to fix it."""
    rule = '*' * 78
    text = '\n'.join([
        '', rule,
        'sqlq: the compiled fast path (sqlq._fastpath) was NOT built:',
        '    ' + reason,
        'sqlq still works, on its pure-Python twin, but slower. To build it,',
        *fix,
        rule, '',
    ])
    print(text, file=sys.stderr)
    # pip shows a successful build's output only under -v: tell the person at the terminal
    # too (when there is one), since the install itself will report success.
    if not sys.stderr.isatty():
        try:
            with open('/dev/tty', 'w') as tty:
                tty.write(text + '\n')
        except OSError:  # no controlling terminal (CI, containers) or not a POSIX system
            pass


class OptionalBuildExt(build_ext):
    """Builds the extension; a failure (no compiler, no headers...) warns instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except (CCompilerError, BaseError, OSError) as exc:
            warn_not_built('%s: %s' % (type(exc).__name__, exc))

    def build_extension(self, ext: Any) -> None:
        missing = [source for source in ext.sources if not os.path.exists(source)]
        if missing:  # a git checkout built without Cython: nothing generated the C
            warn_not_built('%s is missing and Cython, which generates it, is not installed'
                           % ', '.join(missing), CYTHON_FIX)
            return
        try:
            super().build_extension(ext)
        except (CCompilerError, BaseError, OSError) as exc:
            warn_not_built('%s: %s' % (type(exc).__name__, exc))


class SdistWithC(sdist):
    """An sdist must carry the generated C, so that installing it needs no Cython."""

    def run(self) -> None:
        if not os.path.exists(C_SOURCE):
            raise BaseError('%s is missing: install Cython (it generates the file from %s) '
                            'and build the sdist again' % (C_SOURCE, PYX_SOURCE))
        super().run()


def extensions() -> List[Extension]:
    """The fast path's Extension, from Cython when importable, else from the shipped C."""
    if os.environ.get('SQLQ_NO_EXTENSIONS') == '1':
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # the C Cython made (every sdist ships it; OptionalBuildExt checks)
        return [Extension('sqlq._fastpath', [C_SOURCE])]
    try:
        built: List[Extension] = cythonize(
            [Extension('sqlq._fastpath', [PYX_SOURCE])],
            compiler_directives=COMPILER_DIRECTIVES)
    except Exception as exc:  # optional: a failed translation still installs the twin
        warn_not_built('cythonize failed: %s: %s' % (type(exc).__name__, exc))
        return []
    return built


setup(ext_modules=extensions(), cmdclass={'build_ext': OptionalBuildExt, 'sdist': SdistWithC})
