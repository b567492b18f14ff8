"""What the framework integrations share to run a consumer: ``sqlq consume``'s options on
their own command (``manage.py sqlq_consume``, ``flask sqlq consume``), with defaults taken
from the application's configuration (djhuey's ``HUEY['consumer']`` dictionary).
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, Iterable, Mapping

from sqlq.cli.consume import add_consume_options

__all__ = ['consumer_parser', 'apply_consumer_settings', 'check_consumer_settings',
           'SETTING_NAMES']

#: huey's consumer settings whose sense is the opposite of an option's: name -> option dest.
_NEGATED = {'periodic': 'no_periodic', 'check_worker_health': 'disable_health_check'}


def consumer_parser(prog: str, verbose: Iterable[str] = ('-v', '--verbose')
                    ) -> argparse.ArgumentParser:
    """A parser of ``sqlq consume``'s options (not its QUEUE argument)."""
    parser = argparse.ArgumentParser(prog=prog, description='Run a consumer of the '
                                     "application's sqlq queue until stopped.")
    add_consume_options(parser, tuple(verbose))
    return parser


def _actions(parser: argparse.ArgumentParser) -> Dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions
            if action.dest not in ('help', argparse.SUPPRESS)}


#: The options of ``sqlq consume`` by dest (what settings are checked and converted with).
_OPTIONS = _actions(consumer_parser('sqlq'))
#: The keys a consumer settings dictionary may have.
SETTING_NAMES = sorted(set(_OPTIONS) | set(_NEGATED))


def _convert(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """``value`` as the option would hold it given on the command line; ValueError if it is
    not valid for the option."""
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ValueError('%s[%r] must be True or False, not %r' % (where, key, value))
        return value
    if action.dest == 'extra_locks' and isinstance(value, (list, tuple)):
        value = ','.join(str(v) for v in value)
    if action.type is not None and value is not None:
        converter = action.type
        try:
            value = converter(value if isinstance(value, str) else str(value))  # type: ignore
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ValueError('%s[%r]: %s' % (where, key, exc)) from None
    if action.choices is not None and value not in action.choices:
        raise ValueError('%s[%r] must be one of %s, not %r'
                         % (where, key, ', '.join(map(str, action.choices)), value))
    return value


def apply_consumer_settings(parser: argparse.ArgumentParser, settings: Mapping[str, Any],
                            where: str) -> None:
    """Make ``settings`` (huey's names: ``workers``, ``worker_type``, ``periodic``,
    ``check_worker_health``...; or the options' own: ``no_periodic``, ``verbose``...) the
    parser's defaults, so that the command line still overrides them. ValueError naming
    ``where`` (e.g. ``SQLQ['consumer']``) for an unknown key or an invalid value."""
    if not isinstance(settings, Mapping):
        raise ValueError('%s must be a dict, not %s' % (where, type(settings).__name__))
    defaults: Dict[str, Any] = {}
    for key, value in settings.items():
        if key in _NEGATED:
            dest = _NEGATED[key]
            if not isinstance(value, bool):
                raise ValueError('%s[%r] must be True or False, not %r' % (where, key, value))
            defaults[dest] = not value
            continue
        action = _OPTIONS.get(key)
        if action is None:
            raise ValueError('%s has an unknown key %r; known: %s'
                             % (where, key, ', '.join(SETTING_NAMES)))
        defaults[key] = _convert(action, key, value, where)
    parser.set_defaults(**defaults)


def check_consumer_settings(settings: Mapping[str, Any], where: str) -> None:
    """ValueError if ``settings`` would not be accepted as consumer defaults."""
    apply_consumer_settings(consumer_parser('check'), settings, where)

