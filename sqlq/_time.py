"""Conversions between the user's datetimes and the epoch seconds sqlq stores.

sqlq stores every instant as float seconds since the Unix epoch. Like huey, a queue created
with ``utc=True`` reads naive datetimes as UTC and shows naive UTC datetimes; ``utc=False``
uses naive local time. Aware datetimes are always converted exactly.
"""
from __future__ import annotations

import datetime as _dt
from typing import Callable, Optional, Union

EPOCH = _dt.datetime(1970, 1, 1)
_UTC = _dt.timezone.utc


def to_timestamp(value: _dt.datetime, utc: bool) -> float:
    """Epoch seconds of ``value`` (naive values read as UTC or local time per ``utc``)."""
    if value.tzinfo is not None:
        return value.timestamp()
    if utc:
        return (value - EPOCH).total_seconds()
    return value.timestamp()


def from_timestamp(ts: Optional[float], utc: bool) -> Optional[_dt.datetime]:
    """Naive datetime (UTC or local per ``utc``) of epoch seconds ``ts``."""
    if ts is None:
        return None
    if utc:
        return EPOCH + _dt.timedelta(seconds=ts)
    return _dt.datetime.fromtimestamp(ts)


def seconds(value: object, what: str) -> float:
    """``value`` (int, float or timedelta) as float seconds; TypeError naming ``what`` otherwise."""
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError('%s must be a number of seconds or a timedelta, not %s'
                    % (what, type(value).__name__))


Timestamp = Union[_dt.datetime, int, float]
Delay = Union[int, float, _dt.timedelta]


class QueueTime:
    """A queue's clock (epoch seconds) and its convention for naive datetimes (``utc``)."""

    def __init__(self, clock: Callable[[], float], utc: bool) -> None:
        self.clock = clock
        self.utc = utc

    def now(self) -> float:
        """The clock's current epoch seconds."""
        return self.clock()

    def timestamp(self, value: Optional[Timestamp] = None) -> float:
        """Epoch seconds of ``value`` (a datetime or epoch seconds); now if None."""
        if value is None:
            return self.clock()
        if isinstance(value, _dt.datetime):
            return to_timestamp(value, self.utc)
        return seconds(value, 'timestamp')

    def to_timestamp(self, value: _dt.datetime) -> float:
        """Epoch seconds of a datetime in this convention."""
        return to_timestamp(value, self.utc)

    def datetime(self, ts: Optional[float]) -> Optional[_dt.datetime]:
        """The naive datetime of epoch seconds ``ts`` in this convention (None for None)."""
        return from_timestamp(ts, self.utc)

    def resolve_eta(self, eta: Optional[Timestamp],
                    delay: Optional[Delay]) -> Optional[_dt.datetime]:
        """The eta a ``schedule`` call asks for, as a datetime in this convention.

        As with huey, a naive ``eta`` is the caller's local time; numbers are epoch seconds.
        """
        if eta is not None and delay is not None:
            raise ValueError('give eta or delay, not both')
        if delay is not None:
            return self.datetime(self.clock() + seconds(delay, 'delay'))
        if eta is None:
            return None
        if isinstance(eta, _dt.datetime):
            return self.datetime(eta.timestamp())  # naive: local time; aware: exact
        if isinstance(eta, (int, float)) and not isinstance(eta, bool):
            return self.datetime(float(eta))
        raise TypeError('eta must be a datetime or epoch seconds, not %s' % type(eta).__name__)
