"""The ``sqlq`` command line: ``sqlq consume app.queue [options]`` and the inspection commands
(``stats``, ``pending``, ``scheduled``, ``running``, ``failed``, ``requeue``, ``revoke``,
``purge``, ``vacuum``).

This module holds the top-level parser and the entry point (``sqlq = "sqlq.cli:main"``); the
``consume`` command is in ``consume.py``, the inspection commands in ``commands.py`` and their
table/JSON rendering in ``_format.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .. import __version__
from ._common import EXIT_USAGE, CliError, load_queue
from .commands import COMMANDS, add_inspection_commands
from .consume import add_consume_command, consume

__all__ = ['main', 'build_parser', 'CliError', 'load_queue']


class _CommandListFormatter(argparse.HelpFormatter):
    """Keeps each command's help on its name's line (``scheduled`` is the longest name)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = max(self._action_max_length, len('scheduled') + 6)


def build_parser() -> argparse.ArgumentParser:
    """The ``sqlq`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog='sqlq', description='sqlq task queue tools.',
        formatter_class=_CommandListFormatter)
    parser.add_argument('--version', action='version', version='sqlq %s' % __version__)
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    add_consume_command(commands)
    add_inspection_commands(commands)
    return parser


def run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the parsed command; its exit status."""
    if args.command == 'consume':
        return consume(args)
    command = COMMANDS.get(args.command)
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
