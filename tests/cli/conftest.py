"""Fixtures of the CLI tests: the app module with its queue, and the in-process ``sqlq``
runner, defined in test_inspect.py and shared here with the other CLI test modules."""
from tests.cli.test_inspect import app, cli  # noqa: F401
