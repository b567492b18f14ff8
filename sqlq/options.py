"""A task's options, defined once: their names, defaults, checks and attribute access.

The options are ``retries``, ``retry_delay``, ``retry_backoff``, ``priority``, ``expires`` and
``timeout``. Everything that handles them -- the decorators, ``schedule``, per-call options,
the message codec, retries, ``reschedule`` and the listings -- reads them by name from
:class:`TaskOptions`. Adding an option touches this module and the wire format
(:mod:`sqlq.message`).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Generic, Mapping, NamedTuple, Optional, TypeVar, Union, overload

from ._time import seconds

__all__ = ['TaskOptions', 'OPTION_NAMES', 'CALL_KEYWORDS', 'check_options', 'OptionAttributes',
           'Expires']

#: What ``expires`` accepts: seconds after the enqueue (number or timedelta) or an instant.
Expires = Union[int, float, _dt.timedelta, _dt.datetime]


class TaskOptions(NamedTuple):
    """The options of one task invocation (immutable: derive a changed copy with
    :meth:`updated`)."""

    #: Attempts left after a failure (each failed attempt uses one).
    retries: int = 0
    #: Seconds between a failure and the next attempt.
    retry_delay: float = 0.0
    #: Factor applied to ``retry_delay`` after each retry (0 or 1: constant delay).
    retry_backoff: float = 0.0
    #: Higher runs first; ``None`` is 0.
    priority: Optional[int] = None
    #: The task is dropped if it has not started by then (seconds after its enqueue, or an
    #: instant); resolved to an instant at enqueue time.
    expires: Optional[Expires] = None
    #: Seconds a run may take before it is stopped (TaskTimeout).
    timeout: Optional[float] = None

    def updated(self, values: Mapping[str, Any]) -> 'TaskOptions':
        """These options with those of ``values`` that are not None replacing theirs."""
        changes = {name: value for name, value in values.items() if value is not None}
        if not changes:
            return self
        unknown = set(changes) - _NAMES
        if unknown:
            raise TypeError('unknown task option(s) %s; known: %s'
                            % (', '.join(sorted(unknown)), ', '.join(OPTION_NAMES)))
        return self._replace(**changes)


#: The option names, in definition order.
OPTION_NAMES = TaskOptions._fields
_NAMES = frozenset(OPTION_NAMES)
#: The keywords a task call (``add(1, 2, priority=5)``, ``add.s(...)``) takes as settings of
#: the invocation instead of passing them to the function, as huey does: the options, the
#: task's ``id``, and when it runs (``eta`` or ``delay``).
CALL_KEYWORDS = frozenset(OPTION_NAMES + ('id', 'eta', 'delay'))


def _check_retries(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError('%s: retries must be a non-negative int, not %r' % (where, value))
    return value


def _check_backoff(value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise TypeError('%s: retry_backoff must be a non-negative number, not %r'
                        % (where, value))
    return value


def _check_priority(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError('%s: priority must be an int, not %s' % (where, type(value).__name__))
    return value


def _check_expires(value: Any, where: str) -> Expires:
    if not isinstance(value, _dt.datetime):
        seconds(value, '%s: expires' % where)
    return value  # type: ignore[no-any-return]


def _check_seconds(name: str) -> Any:
    return lambda value, where: seconds(value, '%s: %s' % (where, name))


#: Per option: ``check(value, where) -> normalised value``, raising TypeError/ValueError that
#: name the option and ``where`` it was given.
_CHECKS: Dict[str, Any] = {
    'retries': _check_retries,
    'retry_delay': _check_seconds('retry_delay'),
    'retry_backoff': _check_backoff,
    'priority': _check_priority,
    'expires': _check_expires,
    'timeout': _check_seconds('timeout'),
}


def check_options(values: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """The options of ``values`` that are not None, checked and normalised (delays as float
    seconds); TypeError naming ``where`` for an unknown option or a wrong value."""
    checked: Dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        check = _CHECKS.get(name)
        if check is None:
            raise TypeError('%s: unknown task option %r (known: %s)'
                            % (where, name, ', '.join(OPTION_NAMES)))
        checked[name] = check(value, where)
    return checked


T = TypeVar('T')


class _Option(Generic[T]):
    """An attribute of a task reading (and writing) one of its :class:`TaskOptions`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = OPTION_NAMES.index(name)

    @overload
    def __get__(self, task: None, owner: Any) -> '_Option[T]': ...

    @overload
    def __get__(self, task: 'OptionAttributes', owner: Any) -> T: ...

    def __get__(self, task: Optional['OptionAttributes'], owner: Any) -> Any:
        if task is None:
            return self
        return task.options[self.index]

    def __set__(self, task: 'OptionAttributes', value: T) -> None:
        options: Any = task.options  # a NamedTuple's _replace takes each field's own type
        task.options = options._replace(**{self.name: value})


class OptionAttributes:
    """huey's attribute names for a task's options (``task.retries``...), backed by
    ``self.options``."""

    options: TaskOptions

    retries: _Option[int] = _Option('retries')
    retry_delay: _Option[float] = _Option('retry_delay')
    retry_backoff: _Option[float] = _Option('retry_backoff')
    priority: _Option[Optional[int]] = _Option('priority')
    expires: _Option[Optional[Expires]] = _Option('expires')
    timeout: _Option[Optional[float]] = _Option('timeout')
