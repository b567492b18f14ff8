"""Framework projects run as real processes: the Django test project under
``django_project/`` through its ``manage.py``, and the Flask app ``flask_app.py`` through the
``flask`` command. Their consumers and producers are :class:`tests._harness.Proc`\\ s (each in
its own session, killed as a group at the end) on the files of one test directory.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, List, Optional

from tests._harness import LEDGER_ENV, Proc, read_ledger
from tests._helpers import ROOT_DIR, TESTS_DIR, wait_for

DJANGO_PROJECT = os.path.join(TESTS_DIR, 'contrib', 'django_project')
MANAGE = os.path.join(DJANGO_PROJECT, 'manage.py')


class ConsumerProc(Proc):
    """A consumer started by a framework's command, logging to ``<name>.log``."""

    def __init__(self, project: 'Project', name: str, args: List[str]) -> None:
        self.log_path = os.path.join(project.dir, '%s.log' % name)
        super().__init__(project, name, args + ['-l', self.log_path])  # type: ignore[arg-type]

    def log(self) -> str:
        try:
            with open(self.log_path, errors='replace') as fh:
                return fh.read()
        except FileNotFoundError:
            return ''

    def describe(self) -> str:
        return '--- %s log:\n%s\n--- output:\n%s' % (self.name, self.log()[-4000:],
                                                     self.output()[-3000:])

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError('%s exited with %s\n%s'
                                     % (self.name, self.proc.returncode, self.describe()))
            return 'The following tasks are available' in self.log()
        wait_for(ready, timeout, '%s to start' % self.name, self.describe)


class Project:
    """One test's directory, environment and processes (all killed by ``close``)."""

    def __init__(self, directory: Any, **env: str) -> None:
        self.dir = str(directory)
        self.ledger_path = os.path.join(self.dir, 'ledger.txt')
        self.env = dict(os.environ)
        self.env['PYTHONPATH'] = os.pathsep.join(
            [ROOT_DIR] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
        self.env[LEDGER_ENV] = self.ledger_path
        self.env.update(env)
        self.procs: List[Proc] = []

    def ledger(self, event: Optional[str] = None) -> List[Any]:
        return [line for line in read_ledger(self.ledger_path)
                if event is None or line[0] == event]

    def run(self, args: List[str], timeout: float = 90.0) -> subprocess.CompletedProcess:
        """Run a command to its end (bounded), in this directory and environment."""
        return subprocess.run(args, cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start_consumer(self, args: List[str], name: str = 'consumer',
                       ready: bool = True) -> ConsumerProc:
        consumer = ConsumerProc(self, name, args)
        self.procs.append(consumer)
        if ready:
            consumer.wait_ready()
        return consumer

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


class DjangoProject(Project):
    """The test project of ``django_project/`` with its database in ``directory``."""

    def __init__(self, directory: Any, **env: str) -> None:
        super().__init__(directory, SQLQ_TEST_DJANGO_DIR=str(directory), **env)
        self.db = os.path.join(self.dir, 'db.sqlite3')

    def manage(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
        return self.run([sys.executable, MANAGE] + list(args), timeout)

    def scenario(self, name: str, *args: str) -> Any:
        """``manage.py shop NAME ARGS``: the scenario's value (AssertionError if it failed)."""
        proc = self.manage('shop', name, *args)
        if proc.returncode:
            raise AssertionError('manage.py shop %s failed (%d):\n%s\n%s%s' % (
                name, proc.returncode, proc.stdout[-3000:], proc.stderr[-5000:],
                ''.join('\n' + p.describe() for p in self.procs)))
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def start(self, *options: str, command: str = 'sqlq_consume', **kw: Any) -> ConsumerProc:
        return self.start_consumer([sys.executable, MANAGE, command] + list(options), **kw)
