"""Behaviour of sqlq.crontab: syntax, huey's day AND day-of-week rule, validation, next_after."""
from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlq.crontab import Crontab, crontab

# 2024-01-01 is a Monday; 2024-01-07 a Sunday.
BASE = datetime(2024, 1, 1)


def matched_minutes(spec):
    return [m for m in range(60) if crontab(minute=spec)(BASE.replace(minute=m))]


def matched_hours(spec):
    return [h for h in range(24) if crontab(hour=spec)(BASE.replace(hour=h))]


def matched_days(spec):
    return [d for d in range(1, 32) if crontab(day=spec)(BASE.replace(day=d))]


def matched_months(spec):
    return [m for m in range(1, 13) if crontab(month=spec)(BASE.replace(month=m))]


def matched_weekdays(spec):
    """Sunday-based weekday numbers (0-6) the spec matches, tested on 2024-01-07 .. 2024-01-13."""
    c = crontab(day_of_week=spec)
    return [i for i in range(7) if c(datetime(2024, 1, 7 + i))]


# --- syntax -------------------------------------------------------------------------------------

def test_star_matches_every_minute_of_every_field():
    c = crontab()
    assert matched_minutes('*') == list(range(60))
    assert matched_hours('*') == list(range(24))
    assert matched_days('*') == list(range(1, 32))
    assert matched_months('*') == list(range(1, 13))
    assert matched_weekdays('*') == list(range(7))
    assert c(datetime(2031, 7, 19, 13, 37))


@pytest.mark.parametrize('spec, expected', [
    ('*/15', [0, 15, 30, 45]),
    ('*/7', [0, 7, 14, 21, 28, 35, 42, 49, 56]),
    ('*/1', list(range(60))),
    ('*/60', [0]),
    ('5', [5]),
    (5, [5]),
    (0, [0]),
    ('10-13', [10, 11, 12, 13]),
    ('7-7', [7]),
    ('10-30/10', [10, 20, 30]),
    ('10-31/10', [10, 20, 30]),
    ('1,2,40-42,*/20', [0, 1, 2, 20, 40, 41, 42]),
    ('50-59/3,5', [5, 50, 53, 56, 59]),
    (' 1 , 2 ', [1, 2]),
])
def test_minute_syntax_forms(spec, expected):
    assert matched_minutes(spec) == expected


def test_step_counts_from_each_fields_minimum():
    assert matched_hours('*/4') == [0, 4, 8, 12, 16, 20]
    assert matched_days('*/10') == [1, 11, 21, 31]
    assert matched_months('*/3') == [1, 4, 7, 10]
    assert matched_weekdays('0-6/2') == [0, 2, 4, 6]   # '*/2' is refused there, as by huey


def test_other_fields_accept_every_form():
    assert matched_hours('9-17/4,23') == [9, 13, 17, 23]
    assert matched_days('1-7,15') == [1, 2, 3, 4, 5, 6, 7, 15]
    assert matched_months(12) == [12]
    assert matched_weekdays('1-5') == [1, 2, 3, 4, 5]


def test_seconds_are_ignored_when_matching():
    c = crontab(minute=30, hour=9)
    assert c(datetime(2024, 5, 5, 9, 30, 59, 999999))
    assert not c(datetime(2024, 5, 5, 9, 31, 0))


def test_validate_alias_and_callable():
    c = crontab(minute=0)
    assert c.validate(datetime(2024, 1, 1, 3, 0)) is True
    assert c(datetime(2024, 1, 1, 3, 1)) is False


# --- day AND day_of_week, Sunday --------------------------------------------------------------

def test_day_and_day_of_week_must_both_match_friday_13th():
    friday_13th = crontab(minute=0, hour=0, day=13, day_of_week=5)
    assert friday_13th(datetime(2024, 9, 13))       # Friday the 13th
    assert not friday_13th(datetime(2024, 9, 6))    # a Friday, not the 13th (cron OR would fire)
    assert not friday_13th(datetime(2024, 1, 13))   # the 13th, a Saturday (cron OR would fire)
    fired = [d for d in (date(2024, 1, 1) + timedelta(days=i) for i in range(366))
             if friday_13th(datetime(d.year, d.month, d.day))]
    assert fired == [date(2024, 9, 13), date(2024, 12, 13)]


def test_sunday_is_0_and_7():
    sunday = datetime(2024, 1, 7, 12, 0)
    monday = datetime(2024, 1, 8, 12, 0)
    for spec in (0, '0', 7, '7'):
        c = crontab(day_of_week=spec)
        assert c(sunday) and not c(monday), spec
    assert matched_weekdays('5-7') == [0, 5, 6]
    assert matched_weekdays('6,7') == [0, 6]
    assert matched_weekdays('1-7/2') == [0, 1, 3, 5]
    assert crontab(day_of_week=7) == crontab(day_of_week=0)


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize('field, value, fragment', [
    ('minute', 60, '60 is out of range 0-59'),
    ('minute', '-1', "cannot parse '-1'"),
    ('minute', 'x', "cannot parse 'x'"),
    ('minute', '1,,2', "cannot parse ''"),
    ('minute', '*/0', 'step must be at least 1'),
    ('minute', '5/2', 'a step needs * or a range'),
    ('minute', '', 'empty specification'),
    ('minute', 1.5, 'expected a string or an int, got float'),
    ('minute', True, 'got bool'),
    ('hour', 24, '24 is out of range 0-23'),
    ('hour', '1-2-3', "cannot parse '1-2-3'"),
    ('day', '2-32', '32 is out of range 1-31'),
    ('day', 0, '0 is out of range 1-31'),
    ('day', '1-32', '32 is out of range 1-31'),
    ('day', 'L', "cannot parse 'L'"),
    ('month', 13, '13 is out of range 1-12'),
    ('month', 'jan', "cannot parse 'jan'"),
    ('month', '12-13', '13 is out of range 1-12'),
    ('day_of_week', 8, '8 is out of range 0-7'),
    ('day_of_week', 'mon', "cannot parse 'mon'"),
    ('day_of_week', '0-6/0', 'step must be at least 1'),
    ('day_of_week', '*/2', '*/n cannot be used for day_of_week'),
    ('day_of_week', '\u0663', "cannot parse '\u0663'"),  # Arabic-Indic 3
])
def test_invalid_input_raises_value_error_naming_field_and_value(field, value, fragment):
    with pytest.raises(ValueError) as info:
        crontab(**{field: value})
    message = str(info.value)
    assert ('invalid crontab %s %r' % (field, value)) in message
    assert fragment in message


@pytest.mark.parametrize('strict', [False, True])
def test_strict_is_accepted_and_does_not_change_validation(strict):
    with pytest.raises(ValueError, match='minute'):
        crontab(minute='61', strict=strict)
    assert crontab(minute='*/5', strict=strict) == crontab(minute='*/5')


# --- repr, pickle, equality -------------------------------------------------------------------

def test_repr_shows_the_spec():
    c = crontab(minute='*/5', hour=3, day_of_week='1-5')
    assert repr(c) == "crontab(minute='*/5', hour=3, day='*', month='*', day_of_week='1-5')"


def test_pickle_round_trip_and_equality():
    c = crontab(minute='0,30', hour='9-17', day_of_week='1-5')
    clone = pickle.loads(pickle.dumps(c))
    assert isinstance(clone, Crontab)
    assert clone == c and hash(clone) == hash(c)
    assert repr(clone) == repr(c)
    assert clone(datetime(2024, 1, 2, 9, 30)) and not clone(datetime(2024, 1, 6, 9, 30))
    assert crontab(minute='0-59') == crontab()
    assert crontab(minute=1) != crontab(minute=2)


def test_crontab_is_immutable():
    c = crontab()
    with pytest.raises(AttributeError):
        c.minutes = frozenset({1})


# --- next_after -------------------------------------------------------------------------------

@pytest.mark.parametrize('spec, after, expected', [
    # same hour, seconds dropped, strictly after
    (dict(), datetime(2024, 1, 1, 10, 0, 0), datetime(2024, 1, 1, 10, 1)),
    (dict(), datetime(2024, 1, 1, 10, 0, 59, 999), datetime(2024, 1, 1, 10, 1)),
    (dict(minute='*/15'), datetime(2024, 1, 1, 10, 15), datetime(2024, 1, 1, 10, 30)),
    # hour boundary
    (dict(minute='*/15'), datetime(2024, 1, 1, 10, 50), datetime(2024, 1, 1, 11, 0)),
    # day boundary
    (dict(minute=30, hour=9), datetime(2024, 1, 1, 9, 30), datetime(2024, 1, 2, 9, 30)),
    (dict(minute=0, hour='8,20'), datetime(2024, 1, 1, 23, 59, 59), datetime(2024, 1, 2, 8, 0)),
    # month boundary (31-day and 30-day months)
    (dict(minute=0, hour=0, day=31), datetime(2024, 3, 31, 0, 0), datetime(2024, 5, 31, 0, 0)),
    (dict(minute=0, hour=0, day=1), datetime(2024, 4, 15), datetime(2024, 5, 1)),
    # year boundary
    (dict(minute=0, hour=0, day=1, month=1), datetime(2024, 6, 1), datetime(2025, 1, 1)),
    (dict(), datetime(2024, 12, 31, 23, 59), datetime(2025, 1, 1, 0, 0)),
    # leap day
    (dict(minute=0, hour=12, day=29, month=2), datetime(2024, 2, 29, 12, 0),
     datetime(2028, 2, 29, 12, 0)),
    (dict(minute=0, hour=12, day=29, month=2), datetime(2023, 3, 1), datetime(2024, 2, 29, 12, 0)),
    # leap day on a Monday: next one is 2044
    (dict(minute=0, hour=0, day=29, month=2, day_of_week=1), datetime(2024, 3, 1),
     datetime(2044, 2, 29)),
    # day AND day_of_week
    (dict(minute=0, hour=0, day=13, day_of_week=5), datetime(2024, 1, 1), datetime(2024, 9, 13)),
    (dict(minute=0, hour=0, day=13, day_of_week=5), datetime(2024, 9, 13), datetime(2024, 12, 13)),
    # Sunday given as 7
    (dict(minute=0, hour=6, day_of_week=7), datetime(2024, 1, 1), datetime(2024, 1, 7, 6, 0)),
    # 1900 was not a leap year, 2000 was
    (dict(minute=0, hour=0, day=29, month=2), datetime(1897, 3, 1), datetime(1904, 2, 29)),
    (dict(minute=0, hour=0, day=29, month=2), datetime(1997, 3, 1), datetime(2000, 2, 29)),
])
def test_next_after(spec, after, expected):
    assert crontab(**spec).next_after(after) == expected


def test_next_after_preserves_tzinfo():
    tz = timezone(timedelta(hours=5, minutes=30))
    result = crontab(minute=0, hour=0).next_after(datetime(2024, 12, 31, 23, 0, 12, 5, tzinfo=tz))
    assert result == datetime(2025, 1, 1, 0, 0, tzinfo=tz)
    assert result.tzinfo is tz
    assert (result.second, result.microsecond) == (0, 0)


@pytest.mark.parametrize('spec', [
    dict(day=31, month=2),
    dict(day=30, month=2),
    dict(day='30,31', month='2'),
    dict(day=31, month='4,6,9,11'),
])
def test_next_after_impossible_spec_raises(spec):
    c = crontab(**spec)
    with pytest.raises(ValueError, match='never matches'):
        c.next_after(datetime(2024, 1, 1))
    assert not c.can_match()


def test_next_after_reports_datetime_range_overflow():
    with pytest.raises(ValueError, match='no match'):
        crontab(minute=0, hour=0, day=1, month=1).next_after(datetime(9999, 6, 1))
    with pytest.raises(ValueError, match='no match'):
        crontab().next_after(datetime.max)


def test_next_after_rare_match_is_fast():
    import time
    c = crontab(minute=59, hour=23, day=29, month=2, day_of_week=0)
    started = time.perf_counter()
    result = c.next_after(datetime(2024, 3, 1))
    assert time.perf_counter() - started < 0.5
    assert result == datetime(2032, 2, 29, 23, 59)  # 2032-02-29 is a Sunday


# --- properties -------------------------------------------------------------------------------

def piece(low, high, star_step=True):
    """Strategy for one valid comma-list piece of a field ranging low..high (ranges in
    order; ``*/n`` unless ``star_step`` is False, as for day_of_week)."""
    number = st.integers(low, high)
    step = st.integers(1, high - low + 2)
    ranged = st.tuples(number, number).map(sorted)
    return st.one_of(
        st.just('*'),
        step.map(lambda n: '*/%d' % n) if star_step else st.just('*'),
        number.map(str),
        ranged.map(lambda ab: '%d-%d' % tuple(ab)),
        st.tuples(ranged, step).map(lambda t: '%d-%d/%d' % (t[0][0], t[0][1], t[1])),
    )


def field(low, high, star_step=True):
    return st.lists(piece(low, high, star_step), min_size=1, max_size=3).map(','.join)


def expected_values(spec, low, high, star_high=None):
    """Reference expansion of a spec built by ``field``, written from the syntax definition."""
    values = set()
    for part in spec.split(','):
        body, _, step = part.partition('/')
        step = int(step) if step else 1
        if body == '*':
            a, b = low, star_high if star_high is not None else high
        elif '-' in body:
            a, b = map(int, body.split('-'))
        else:
            a = b = int(body)
        values.update(range(a, b + 1, step))
    return values


@given(minute=field(0, 59), hour=field(0, 23), day=field(1, 31), month=field(1, 12),
       dow=field(0, 7, star_step=False))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_generated_specs_match_reference_expansion(minute, hour, day, month, dow):
    assert matched_minutes(minute) == sorted(expected_values(minute, 0, 59))
    assert matched_hours(hour) == sorted(expected_values(hour, 0, 23))
    assert matched_days(day) == sorted(expected_values(day, 1, 31))
    assert matched_months(month) == sorted(expected_values(month, 1, 12))
    weekdays = {v % 7 for v in expected_values(dow, 0, 7, star_high=6)}
    assert matched_weekdays(dow) == sorted(weekdays)


def assert_no_match_between(c, dt, nxt):
    """Check that no minute strictly between dt and nxt matches c, using only c(...)."""
    t = dt.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Minutes on dt's own day (or up to nxt if nxt is the same day), one by one.
    while t < nxt and t.date() == dt.date():
        assert not c(t), t
        t += timedelta(minutes=1)
    # Whole days in between: a matching day would match at nxt's time of day.
    day = t
    while day.date() < nxt.date():
        assert not c(day.replace(hour=nxt.hour, minute=nxt.minute)), day
        day += timedelta(days=1)
    # Minutes on nxt's day before nxt.
    t = max(t, nxt.replace(hour=0, minute=0))
    while t < nxt:
        assert not c(t), t
        t += timedelta(minutes=1)


frequent_specs = st.fixed_dictionaries({
    'minute': field(0, 59),
    'hour': field(0, 23),
    'day': st.one_of(st.just('*'), field(1, 28)),
    'month': st.one_of(st.just('*'), field(1, 12)),
    'day_of_week': st.one_of(st.just('*'), field(0, 7, star_step=False)),
})
moments = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2101, 1, 1),
                       timezones=st.sampled_from([None, timezone.utc,
                                                  timezone(timedelta(hours=-7))]))


@given(spec=frequent_specs, dt=moments)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_next_after_is_the_first_match_strictly_after(spec, dt):
    c = crontab(**spec)
    nxt = c.next_after(dt)
    assert nxt > dt
    assert c(nxt)
    assert (nxt.second, nxt.microsecond) == (0, 0)
    assert nxt.tzinfo is dt.tzinfo
    assert_no_match_between(c, dt, nxt)


@given(minute=field(0, 59), hour=field(0, 23), dt=moments)
@settings(max_examples=200, deadline=None)
def test_next_after_by_brute_force_within_a_day(minute, hour, dt):
    """Specs that fire every day: compare against a minute-by-minute scan of the next 24h."""
    c = crontab(minute=minute, hour=hour)
    t = dt.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not c(t):
        t += timedelta(minutes=1)
    assert t - dt <= timedelta(days=1)
    assert c.next_after(dt) == t
