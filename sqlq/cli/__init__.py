"""The ``sqlq`` command line: ``sqlq consume app.queue [options]`` and the inspection commands
(``stats``, ``pending``, ``scheduled``, ``running``, ``failed``, ``requeue``, ``revoke``,
``purge``, ``vacuum``, ``status``, ``history``, ``metrics``) and ``web`` (the dashboard,
``web.py``).

This module holds the top-level parser and the entry point (``sqlq = "sqlq.cli:main"``); the
``consume`` command is in ``consume.py``, the inspection commands in ``commands.py`` and their
table/JSON rendering in ``_format.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, List, Optional, Sequence

from .. import __version__, _accel
from ._common import EXIT_USAGE, CliError, load_queue
from .commands import COMMANDS, add_inspection_commands
from .consume import add_consume_command, consume
from .tracking import TRACKING_COMMANDS, add_tracking_commands
from .web import add_web_command, web

__all__ = ['main', 'build_parser', 'version_text', 'CliError', 'load_queue']


class _CommandListFormatter(argparse.HelpFormatter):
    """Keeps each command's help on its name's line (``scheduled`` is the longest name)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = max(self._action_max_length, len('scheduled') + 6)


def fast_path_text() -> str:
    """Which implementation of the fast path this process runs, and why not the compiled one."""
    if _accel.IMPLEMENTATION == 'compiled':
        return 'compiled'
    if os.environ.get('SQLQ_NO_EXTENSIONS') == '1':
        reason = 'chosen by SQLQ_NO_EXTENSIONS=1'
    elif not _accel.compiled_available():
        reason = 'the compiled sqlq._fastpath did not import: %s' % _accel.compiled_import_error()
    else:
        reason = 'chosen by sqlq._accel.use()'
    return 'pure-Python twin (%s)' % reason


def version_text() -> str:
    """What ``sqlq --version`` prints: the version and the fast path in use."""
    return 'sqlq %s\nfast path: %s' % (__version__, fast_path_text())


class _VersionAction(argparse.Action):
    """``--version``: argparse's own action would reflow the two lines into one."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``sqlq`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog='sqlq', description='sqlq task queue tools.',
        formatter_class=_CommandListFormatter)
    parser.add_argument('--version', action=_VersionAction,
                        help='print the version and the fast path in use, and exit')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    add_consume_command(commands)
    add_inspection_commands(commands)
    add_tracking_commands(commands)
    add_web_command(commands)
    return parser


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the parsed command; its exit status."""
    if args.command == 'consume':
        return consume(args)
    if args.command == 'web':
        return web(args)
    command = COMMANDS.get(args.command) or TRACKING_COMMANDS.get(args.command)
    if command is None:
        parser.error('unknown command %r' % args.command)
    return command(args)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``sqlq`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run_command(args, parser)
    except CliError as exc:
        print('sqlq: error: %s' % exc, file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head & co.: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # configuration errors from the queue or consumer
        from ..exceptions import SqlqError
        if isinstance(exc, SqlqError):
            print('sqlq: error: %s' % exc, file=sys.stderr)
            return EXIT_USAGE
        raise
