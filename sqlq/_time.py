"""Conversions between the user's datetimes and the epoch seconds sqlq stores.

sqlq stores every instant as float seconds since the Unix epoch. Like huey, a queue created
with ``utc=True`` reads naive datetimes as UTC and shows naive UTC datetimes; ``utc=False``
uses naive local time. Aware datetimes are always converted exactly.
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional

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
