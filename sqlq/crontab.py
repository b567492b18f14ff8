"""Cron-style schedules for periodic tasks, with huey 3.x's ``crontab()`` API.

``crontab(minute, hour, day, month, day_of_week)`` returns a :class:`Crontab`: calling it with a
``datetime`` answers "does this minute match?", and :meth:`Crontab.next_after` gives the next
matching minute so a consumer can sleep exactly until the next firing.

Field syntax (each field is a string or a non-negative ``int``):

* ``*``          every value of the field
* ``*/n``        every n-th value, counted from the field's minimum (``hour='*/4'`` is 0,4,...,20;
                 ``day='*/10'`` is 1,11,21,31); not for ``day_of_week``, as with huey (a week
                 does not divide into steps: spell the days, or use ``'0-6/n'``)
* ``a``          exactly ``a``
* ``a-b``        ``a`` through ``b`` inclusive; with ``a > b`` the range wraps around the
                 field's end, as with huey (``hour='22-2'`` is 22,23,0,1,2;
                 ``day_of_week='5-1'`` is Friday to Monday)
* ``a-b/n``      every n-th value from ``a`` through ``b`` (counted on across a wrap:
                 ``minute='50-10/7'`` is 50,57,4)
* ``x,y,...``    any mix of the above

Ranges: minute 0-59, hour 0-23, day 1-31, month 1-12, day_of_week 0-6 with 0 = Sunday,
1 = Monday ... 6 = Saturday; 7 is also accepted as Sunday (so ``'5-7'`` is Friday to Sunday).

Semantics kept from huey: ``day`` AND ``day_of_week`` must both match (classic cron ORs them when
both are restricted), so ``crontab(day=13, day_of_week=5)`` fires on Friday the 13th only.
Matching uses the datetime's wall-clock fields as given; no time-zone conversion is done.
``crontab.hourly()`` (minute 0 of every hour) and ``crontab.daily()`` (midnight) are huey's
shorthands; keyword arguments change their other fields.

Deliberate difference from huey: invalid input (out-of-range values, unparseable text, a step of
0) always raises ``ValueError`` naming the field and the value. huey ignores some invalid parts
unless ``strict=True``; ``strict`` is still accepted for compatibility but no longer changes
anything.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta
from typing import Union

__all__ = ['crontab', 'Crontab', 'FieldValue']

FieldValue = Union[int, str]

# (field name, lowest value, highest value accepted in input)
_FIELDS = (
    ('minute', 0, 59),
    ('hour', 0, 23),
    ('day', 1, 31),
    ('month', 1, 12),
    ('day_of_week', 0, 7),
)

# One calendar cycle: the Gregorian calendar (dates and weekdays) repeats every 400 years, so a
# spec with no match within this span never matches at all.
SEARCH_YEARS = 400

_PIECE = re.compile(r'^(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?$', re.ASCII)


def _parse_field(name: str, low: int, high: int, value: object) -> frozenset[int]:
    """Expand one field's spec into the set of values it allows; raise ValueError if invalid."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError('invalid crontab %s %r: expected a string or an int, got %s'
                         % (name, value, type(value).__name__))
    text = str(value).strip()
    if not text:
        raise ValueError('invalid crontab %s %r: empty specification' % (name, value))

    def fail(reason: str) -> ValueError:
        return ValueError('invalid crontab %s %r: %s' % (name, value, reason))

    result: set[int] = set()
    for raw_piece in text.split(','):
        piece = raw_piece.strip()
        m = _PIECE.match(piece)
        if m is None:
            raise fail('cannot parse %r (expected *, */n, a, a-b, a-b/n or a comma list of these)'
                       % piece)
        star, start_s, end_s, step_s = m.groups()
        if step_s is not None:
            step = int(step_s)
            if step == 0:
                raise fail('step must be at least 1 in %r' % piece)
            if star is None and end_s is None:
                raise fail('a step needs * or a range before it, got %r' % piece)
        else:
            step = 1
        if star is not None:
            if step_s is not None and name == 'day_of_week':
                raise fail('*/n cannot be used for day_of_week, as with huey (list the days, '
                           'or use a range such as 0-6/n)')
            start, end = low, high
        else:
            start = int(start_s)
            end = int(end_s) if end_s is not None else start
            for number in (start, end):
                if not low <= number <= high:
                    raise fail('%d is out of range %d-%d' % (number, low, high))
        if start > end and name == 'day_of_week' and start == 7:
            start = 0  # Sunday spelt 7 starts the week: '7-1' is Sunday to Monday
        if start > end:  # wraps around the field's end, as with huey
            top = 6 if name == 'day_of_week' else high
            cycle = list(range(start, top + 1)) + list(range(low, end + 1))
            result.update(cycle[::step])
        else:
            result.update(range(start, end + 1, step))

    if name == 'day_of_week' and 7 in result:
        result.discard(7)
        result.add(0)
    return frozenset(result)


def _sunday_based_weekday(year: int, month: int, day: int) -> int:
    """Day of week with 0 = Sunday ... 6 = Saturday."""
    return (calendar.weekday(year, month, day) + 1) % 7


class Crontab:
    """A parsed cron schedule; call it with a datetime to test whether that minute matches.

    Instances are immutable, comparable, hashable and picklable. Build them with
    :func:`crontab`.
    """

    __slots__ = ('_spec', 'minutes', 'hours', 'days', 'months', 'days_of_week')

    _spec: tuple[FieldValue, ...]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday ... 6 = Saturday (7 normalised to 0)

    def __init__(self, minute: FieldValue = '*', hour: FieldValue = '*', day: FieldValue = '*',
                 month: FieldValue = '*', day_of_week: FieldValue = '*') -> None:
        spec = (minute, hour, day, month, day_of_week)
        parsed = [_parse_field(name, low, high, value)
                  for (name, low, high), value in zip(_FIELDS, spec)]
        object.__setattr__(self, '_spec', spec)
        for attr, values in zip(('minutes', 'hours', 'days', 'months', 'days_of_week'), parsed):
            object.__setattr__(self, attr, values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError('Crontab is immutable')

    def __reduce__(self) -> tuple[type[Crontab], tuple[FieldValue, ...]]:
        return (Crontab, self._spec)

    def __repr__(self) -> str:
        args = ', '.join('%s=%r' % (field[0], value) for field, value in zip(_FIELDS, self._spec))
        return 'crontab(%s)' % args

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crontab):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[frozenset[int], ...]:
        return (self.minutes, self.hours, self.days, self.months, self.days_of_week)

    def __call__(self, dt: datetime) -> bool:
        """True when ``dt``'s minute matches (seconds and smaller are ignored)."""
        return (dt.minute in self.minutes
                and dt.hour in self.hours
                and dt.month in self.months
                and dt.day in self.days
                and _sunday_based_weekday(dt.year, dt.month, dt.day) in self.days_of_week)

    validate = __call__

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        return day in self.days and _sunday_based_weekday(year, month, day) in self.days_of_week

    def can_match(self) -> bool:
        """Whether any datetime at all matches (False for e.g. ``day=31, month=2``)."""
        # Over a 400-year cycle every calendar date, Feb 29 included, falls on every weekday,
        # so only the (month, day) combination matters once day_of_week is non-empty.
        return bool(self.days_of_week) and any(
            day <= (29 if month == 2 else calendar.monthrange(2001, month)[1])
            for month in self.months for day in self.days)

    def next_after(self, dt: datetime) -> datetime:
        """The first matching minute strictly after ``dt``.

        The result has seconds and microseconds set to zero and keeps ``dt``'s tzinfo.
        Raises ValueError if the schedule can never match, or if the next match would fall
        beyond the range ``datetime`` supports.
        """
        if not self.can_match():
            raise ValueError('%r never matches: no day in %s exists in month(s) %s'
                             % (self, sorted(self.days), sorted(self.months)))
        start = dt.replace(second=0, microsecond=0)
        try:
            start += timedelta(minutes=1)
        except OverflowError:
            raise ValueError('%r: no match after %s within the datetime range'
                             % (self, dt)) from None
        found = self._search(start.year, start.month, start.day, start.hour, start.minute,
                             start.year + SEARCH_YEARS)
        if found is None:
            raise ValueError('%r: no match after %s within %d years or the datetime range'
                             % (self, dt, SEARCH_YEARS))
        year, month, day, hour, minute = found
        return dt.replace(year=year, month=month, day=day, hour=hour, minute=minute,
                          second=0, microsecond=0)

    def _search(self, year: int, month: int, day: int, hour: int, minute: int,
                last_year: int) -> tuple[int, int, int, int, int] | None:
        """Earliest matching (year, month, day, hour, minute) at or after the given one."""
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        days = sorted(self.days)
        last_year = min(last_year, datetime.max.year)
        while year <= last_year:
            if month > 12:
                year, month, day, hour, minute = year + 1, 1, 1, 0, 0
                continue
            if month not in self.months:
                month, day, hour, minute = month + 1, 1, 0, 0
                continue
            month_length = calendar.monthrange(year, month)[1]
            for d in days:
                if d < day or d > month_length or not self._day_matches(year, month, d):
                    continue
                if d > day:
                    hour, minute = 0, 0
                hm = self._next_time_of_day(hours, minutes, hour, minute)
                if hm is not None:
                    return (year, month, d, hm[0], hm[1])
                # Nothing left today: any later day starts from midnight.
                day, hour, minute = d + 1, 0, 0
            month, day, hour, minute = month + 1, 1, 0, 0
        return None

    @staticmethod
    def _next_time_of_day(hours: list[int], minutes: list[int], hour: int,
                          minute: int) -> tuple[int, int] | None:
        """Earliest allowed (hour, minute) at or after hour:minute on the same day, if any."""
        for h in hours:
            if h < hour:
                continue
            floor = minute if h == hour else 0
            for m in minutes:
                if m >= floor:
                    return (h, m)
        return None


class _Crontab:
    """``crontab(...)`` and its shorthands ``crontab.hourly()`` and ``crontab.daily()``."""

    def __call__(self, minute: FieldValue = '*', hour: FieldValue = '*', day: FieldValue = '*',
                 month: FieldValue = '*', day_of_week: FieldValue = '*',
                 strict: bool = False) -> Crontab:
        """Build a :class:`Crontab` matching the given cron fields (see the module docstring).

        ``day`` and ``day_of_week`` must both match. Invalid input always raises ValueError;
        ``strict`` is accepted for huey compatibility and has no effect.
        """
        del strict  # kept for API compatibility only; validation is always strict
        return Crontab(minute, hour, day, month, day_of_week)

    def hourly(self, *, minute: FieldValue = '0', hour: FieldValue = '*',
               day: FieldValue = '*', month: FieldValue = '*',
               day_of_week: FieldValue = '*', strict: bool = False) -> Crontab:
        """Every hour, on the hour (huey's ``crontab.hourly()``)."""
        return self(minute, hour, day, month, day_of_week, strict)

    def daily(self, *, minute: FieldValue = '0', hour: FieldValue = '0',
              day: FieldValue = '*', month: FieldValue = '*',
              day_of_week: FieldValue = '*', strict: bool = False) -> Crontab:
        """Every day at midnight (huey's ``crontab.daily()``)."""
        return self(minute, hour, day, month, day_of_week, strict)

    def __repr__(self) -> str:
        return '<function crontab>'


#: Build a :class:`Crontab`: ``crontab(minute='*', hour='*', day='*', month='*',
#: day_of_week='*')``; ``crontab.hourly()``, ``crontab.daily()``.
crontab = _Crontab()
