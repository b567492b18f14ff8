"""The package's layering rules, checked on the source (no import side effects), and every
module imported alone in a fresh interpreter.

Storage is bytes in, bytes out: it never imports the task layer or serialization; only the
``storage/sqlite/`` package talks to apsw and only ``storage/redis/`` to redis; only
``_accel.py`` picks between the compiled fast path and its twin; the bottom modules use the
standard library alone. The facade (``api``) stays below the consumer layer, and no import made
at run time closes a cycle. See docs/architecture.md for the layers.
"""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'sqlq'
BOTTOM = {'exceptions', 'signals', 'crontab', '_time', '_wire', '_aio', '_typing'}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and 'TYPE_CHECKING' in ast.unparse(node.test)


def _module_level(tree: ast.Module) -> list:
    """The import statements that run when the module is imported: at its top level (also
    inside top-level try/if blocks), not under ``if TYPE_CHECKING`` nor inside functions."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.Try, ast.If)) and not _is_type_checking(node):
            todo.extend(node.body + node.orelse
                        + [n for h in getattr(node, 'handlers', ()) for n in h.body])
    return found


def imports_of(path: pathlib.Path, at_import_only: bool = False) -> set:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    found = set()
    for node in (_module_level(tree) if at_import_only else ast.walk(tree)):
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
#: What importing each module imports (no TYPE_CHECKING blocks, no imports inside functions).
AT_IMPORT = {module_name(p): imports_of(p, True) for p in sorted(PACKAGE.rglob('*.py'))}


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


def test_only_the_tracing_module_imports_opentelemetry_and_only_when_used():
    users = {name for name, mods in MODULES.items()
             if any(m == 'opentelemetry' or m.startswith('opentelemetry.') for m in mods)}
    assert users == {'sqlq.tracing'}
    assert not any(m.startswith('opentelemetry') for m in AT_IMPORT['sqlq.tracing'])


def test_only_the_redis_backend_imports_redis():
    users = {name for name, mods in MODULES.items() if 'redis' in mods or
             any(m.startswith('redis.') for m in mods)}
    assert users  # the backend is found, and nothing outside its package imports redis
    assert all(name == 'sqlq.storage.redis' or name.startswith('sqlq.storage.redis.')
               for name in users), users


def _modules_in(names: set, graph: dict) -> set:
    """The sqlq modules among imported names (``pkg.mod`` or ``pkg.mod.attribute``)."""
    found = set()
    for name in names:
        while name and name not in graph:
            name = name.rpartition('.')[0]
        if name:
            found.add(name)
    return found


def test_no_import_made_at_run_time_closes_a_cycle():
    graph = {name: _modules_in({m for m in mods if m.startswith('sqlq.')}, AT_IMPORT) - {name}
             for name, mods in AT_IMPORT.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + '.')}
    state: dict = {}

    def visit(node: str, path: list) -> None:
        state[node] = 'open'
        for target in sorted(graph[node]):
            if state.get(target) == 'open':
                raise AssertionError('import cycle: %s' % ' -> '.join(
                    path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = 'done'

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_facade_stays_below_the_consumer_layer():
    """``api`` and the task layer import neither the consumer, the worker nor the CLI when they
    are imported; the one import of the consumer layer the facade makes is
    ``create_consumer``'s, when that is called (huey users create consumers so)."""
    upper = ('sqlq.consumer', 'sqlq.worker', 'sqlq.cli')
    for name in ('sqlq.api', 'sqlq.admin', 'sqlq.execution', 'sqlq.outcomes', 'sqlq.enqueue',
                 'sqlq.decisions', 'sqlq.scheduler', 'sqlq.recovery', 'sqlq.revocation'):
        assert not {m for m in AT_IMPORT[name]
                    if any(m == u or m.startswith(u + '.') for u in upper)}, name
    tree = ast.parse((PACKAGE / 'api.py').read_text())
    lazy = [(function.name, node.module) for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef)
            for node in ast.walk(function) if isinstance(node, ast.ImportFrom)
            and any(('sqlq.' + (node.module or '')).startswith(u) for u in upper)]
    assert lazy == [('create_consumer', 'consumer')]


def test_the_dashboard_is_imported_only_by_its_command():
    """``sqlq.web`` sits beside the CLI: nothing below imports it, and the CLI imports it
    only when ``sqlq web`` runs (a plain ``sqlq stats`` does not load the HTTP server)."""
    users = {name for name, mods in MODULES.items() if not name.startswith('sqlq.web')
             and any(m == 'sqlq.web' or m.startswith('sqlq.web.') for m in mods)}
    assert users == {'sqlq.cli.web'}
    assert not {m for m in AT_IMPORT['sqlq.cli.web'] if m.startswith('sqlq.web')}
    for name in (n for n in MODULES if n.startswith('sqlq.web')):
        assert not {m for m in AT_IMPORT[name]
                    if m.startswith(('sqlq.consumer', 'sqlq.worker'))}, name


def test_recovery_needs_only_the_storage():
    """Dead-owner recovery (used by the facade's admin and by the consumer) reads owners and
    claims through the storage contract alone."""
    assert not outside(sqlq_imports('sqlq.recovery'), {'sqlq.storage', 'sqlq.exceptions'})


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module, imported first in a fresh interpreter (``python -I``, warnings as errors),
    needs no other import to have happened before it."""
    env = dict(os.environ, PYTHONPATH=str(PACKAGE.parent))
    if not _accel_compiled():
        env['SQLQ_NO_EXTENSIONS'] = '1'  # else the fallback warning would be an error
    failures = {}
    for name in sorted(MODULES):
        if missing_framework(name):
            continue  # sqlq.contrib.django without Django installed, ...
        proc = subprocess.run([sys.executable, '-I', '-W', 'error', '-c',
                               'import sys; sys.path.insert(0, %r); import %s'
                               % (str(PACKAGE.parent), name)],
                              capture_output=True, text=True, env=env, timeout=60)
        if proc.returncode:
            failures[name] = proc.stderr.strip().splitlines()[-1:]
    assert not failures, failures


#: The framework each integration needs (installed by the ``django`` and ``flask`` extras).
FRAMEWORKS = {'sqlq.contrib.django': ('django',), 'sqlq.contrib.flask': ('flask', 'click')}


def missing_framework(name: str) -> bool:
    """Whether module ``name`` belongs to an integration whose framework is not installed."""
    import importlib.util
    for package, needs in FRAMEWORKS.items():
        if name == package or name.startswith(package + '.'):
            return any(importlib.util.find_spec(n) is None for n in needs)
    return False


def test_only_the_integrations_import_their_frameworks():
    """Django is imported by sqlq.contrib.django alone, Flask by sqlq.contrib.flask alone, and
    nothing but the integrations imports them (the core never depends on a framework)."""
    for name, mods in MODULES.items():
        for package, needs in FRAMEWORKS.items():
            roots = needs + (('django_tasks',) if 'django' in needs else ())
            if any(m.split('.')[0] in roots for m in mods):
                assert name == package or name.startswith(package + '.'), (name, package)
        if not name.startswith('sqlq.contrib'):
            assert not {m for m in mods if m.startswith('sqlq.contrib')}, name


def _accel_compiled() -> bool:
    from sqlq import _accel
    return _accel.compiled_available()
