"""Build script for the optional compiled fast path ``sqlq._fastpath`` (Cython).

Everything else (metadata, dependencies, package data) is in pyproject.toml. The extension is
``optional``: if it fails to compile, the install still succeeds and sqlq runs on the pure
twin ``sqlq._fastpath_py``. ``SQLQ_NO_EXTENSIONS=1`` at build time skips it. CI refuses that (``.ci/run`` imports ``sqlq._fastpath``, and the
tests run with ``SQLQ_REQUIRE_EXTENSIONS=1``).
"""
import os
import sys

from setuptools import Extension, setup

ext_modules = []
if os.environ.get('SQLQ_NO_EXTENSIONS') != '1':
    try:
        from Cython.Build import cythonize
    except ImportError as exc:  # Cython is a build requirement, so this is a broken build env
        print('sqlq: Cython unavailable (%s); building without sqlq._fastpath' % exc,
              file=sys.stderr)
    else:
        try:
            ext_modules = cythonize(
                [Extension('sqlq._fastpath', ['sqlq/_fastpath.pyx'], optional=True)],
                compiler_directives={
                    'language_level': 3,
                    'boundscheck': False,   # every index is checked by hand against the size
                    'wraparound': False,    # no negative indexing in the module
                    'initializedcheck': False,
                },
            )
        except Exception as exc:  # optional: a failed translation still installs the twin
            print('sqlq: cythonize failed (%s); building without sqlq._fastpath' % exc,
                  file=sys.stderr)
        # cythonize() rebuilds the Extension objects and drops `optional`: set it again, so
        # that a failed C compile (no compiler...) warns instead of failing the install.
        for ext in ext_modules:
            ext.optional = True

setup(ext_modules=ext_modules)
