"""crontab as in huey 3.5: wrap-around ranges, the hourly()/daily() shorthands, and
day_of_week='*/n' refused."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sqlq import crontab

MONDAY = datetime(2024, 1, 1)      # 2024-01-07 is a Sunday


def hours(c):
    return [h for h in range(24) if c(MONDAY.replace(hour=h))]


def minutes(c):
    return [m for m in range(60) if c(MONDAY.replace(minute=m))]


def weekdays(c):
    """Sunday-based weekday numbers matched."""
    return [d for d in range(7) if c(datetime(2024, 1, 7) + timedelta(days=d))]


def test_hour_range_wraps_around_midnight():
    """huey: hour='22-2' is 22, 23, 0, 1, 2."""
    assert hours(crontab(minute=0, hour='22-2')) == [0, 1, 2, 22, 23]


def test_day_of_week_range_wraps_around_the_week():
    """huey: day_of_week='5-1' is Friday, Saturday, Sunday, Monday; 7 is Sunday too."""
    assert weekdays(crontab(day_of_week='5-1')) == [0, 1, 5, 6]
    assert weekdays(crontab(day_of_week='6-0')) == [0, 6]
    assert weekdays(crontab(day_of_week='7-1')) == [0, 1]
    assert weekdays(crontab(day_of_week='5-7')) == [0, 5, 6]


@pytest.mark.parametrize('field, spec, expected', [
    ('minute', '50-10', list(range(11)) + list(range(50, 60))),
    ('minute', '50-10/7', [4, 50, 57]),          # the step counts on across the wrap
    ('hour', '20-3/3', [2, 20, 23]),
    ('day', '30-2', [1, 2, 30, 31]),
    ('month', '11-2', [1, 2, 11, 12]),
    ('day_of_week', '5-1/2', [0, 5]),
])
def test_wrapped_ranges_in_every_field(field, spec, expected):
    """huey: every field's a-b with a > b wraps around, a step counting on across the end."""
    c = crontab(**{field: spec})
    probes = {
        'minute': lambda v: MONDAY.replace(minute=v),
        'hour': lambda v: MONDAY.replace(hour=v),
        'day': lambda v: datetime(2024, 1, v),
        'month': lambda v: datetime(2024, v, 1),
        'day_of_week': lambda v: datetime(2024, 1, 7) + timedelta(days=v),
    }
    values = {'minute': range(60), 'hour': range(24), 'day': range(1, 32),
              'month': range(1, 13), 'day_of_week': range(7)}[field]
    assert [v for v in values if c(probes[field](v))] == expected


def test_hourly_and_daily_shorthands():
    """huey: crontab.hourly() fires on the hour, crontab.daily() at midnight; keyword
    arguments change their other fields."""
    assert crontab.hourly() == crontab(minute='0')
    assert crontab.daily() == crontab(minute='0', hour='0')
    assert minutes(crontab.hourly()) == [0] and hours(crontab.hourly()) == list(range(24))
    assert crontab.hourly(hour='9-17') == crontab(minute='0', hour='9-17')
    assert crontab.daily(day_of_week='1-5') == crontab(minute='0', hour='0', day_of_week='1-5')
    assert crontab.daily(minute='30') == crontab(minute='30', hour='0')
    with pytest.raises(TypeError):
        crontab.hourly('5')               # keyword-only, as in huey


@pytest.mark.parametrize('spec', ['*/3', '*/2', '*/1', '1,*/2'])
def test_day_of_week_star_step_is_refused(spec):
    """huey: '*/n' cannot be used for day_of_week (ValueError, strict or not)."""
    for strict in (False, True):
        with pytest.raises(ValueError, match='day_of_week'):
            crontab(day_of_week=spec, strict=strict)
    assert weekdays(crontab(day_of_week='0-6/3')) == [0, 3, 6]    # what to write instead


def test_periodic_task_on_a_wrapped_range_runs_in_both_halves(queue):
    """huey: a periodic task with hour='22-2' is due at 23:00 and 01:00, not at 12:00."""
    @queue.periodic_task(crontab(minute='0', hour='22-2'))
    def nightly():
        return 'night'

    due = {hour: [t.name for t in queue.read_periodic(datetime(2024, 1, 1, hour, 0))]
           for hour in (23, 1, 12)}
    assert [len(due[23]), len(due[1]), len(due[12])] == [1, 1, 0]
