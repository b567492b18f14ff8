"""The package's layering rules, checked on the source (no import side effects).

Storage is bytes in, bytes out: it never imports the task layer or serialization; only the
``storage/sqlite/`` package talks to apsw; only ``_accel.py`` picks between the compiled fast
path and its twin; the bottom modules use the standard library alone.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'sqlq'
BOTTOM = {'exceptions', 'signals', 'crontab', '_time', '_wire'}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path: pathlib.Path) -> set:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
                if node.module is None:
                    found.update('%s.%s' % (target, a.name) for a in node.names)
                else:
                    found.add(target)
            else:
                found.add(node.module or '')
                found.update('%s.%s' % (node.module, a.name) for a in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob('*.py'))}


def sqlq_imports(name: str) -> set:
    return {m for m in MODULES[name] if m == 'sqlq' or m.startswith('sqlq.')}


def outside(imported: set, allowed: set) -> set:
    """Imported names (modules or module.attribute) not within an allowed module."""
    return {m for m in imported
            if not any(m == a or m.startswith(a + '.') for a in allowed)}


def test_every_module_was_read():
    assert {'sqlq.api', 'sqlq.storage.sqlite', 'sqlq._accel', 'sqlq.consumer'} <= set(MODULES)


@pytest.mark.parametrize('name', sorted(n for n in MODULES if n.startswith('sqlq.storage')))
def test_storage_imports_only_storage_and_exceptions(name):
    allowed = {'sqlq.exceptions'} | {n for n in MODULES if n.startswith('sqlq.storage')}
    assert not outside(sqlq_imports(name), allowed)


def test_only_the_sqlite_backend_imports_apsw():
    users = {name for name, mods in MODULES.items() if 'apsw' in mods or
             any(m.startswith('apsw.') for m in mods)}
    assert users  # the backend is found, and nothing outside its package imports apsw
    assert all(name == 'sqlq.storage.sqlite' or name.startswith('sqlq.storage.sqlite.')
               for name in users), users


def test_only_accel_imports_the_fast_path_modules():
    users = {name for name, mods in MODULES.items()
             if mods & {'sqlq._fastpath', 'sqlq._fastpath_py'}}
    assert users == {'sqlq._accel'}
    # the compiled module is loaded by name, so that its import error can be reported
    assert "'sqlq._fastpath'" in (PACKAGE / '_accel.py').read_text()


@pytest.mark.parametrize('name', sorted('sqlq.' + b for b in BOTTOM))
def test_bottom_layer_uses_the_standard_library_only(name):
    assert not outside(sqlq_imports(name), {'sqlq.exceptions', 'sqlq._wire'})
    assert not MODULES[name] & {'apsw', 'redis'}


def test_only_the_redis_backend_imports_redis():
    users = {name for name, mods in MODULES.items() if 'redis' in mods or
             any(m.startswith('redis.') for m in mods)}
    assert users  # the backend is found, and nothing outside its package imports redis
    assert all(name == 'sqlq.storage.redis' or name.startswith('sqlq.storage.redis.')
               for name in users), users
