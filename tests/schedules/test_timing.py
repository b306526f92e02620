"""Fire times of cron expressions across DST changes, and of intervals (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.schedules.timing import Timing, cron_problem, zone_problem


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron(expression: str, zone: str = "UTC") -> Timing:
    return Timing(expression, zone, None, None)


def test_a_daily_time_in_the_spring_forward_gap_fires_once_right_after_it():
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    timing = cron("30 2 * * *", "America/New_York")
    times = timing.upcoming(utc(2026, 3, 7, 12), 3)
    assert times == [
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT, the first minute after the gap
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        utc(2026, 3, 10, 6, 30),
    ]


def test_a_daily_time_in_the_repeated_hour_fires_once_at_its_first_occurrence():
    # New York, 1 November 2026: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    timing = cron("30 1 * * *", "America/New_York")
    assert timing.upcoming(utc(2026, 10, 31, 12), 3) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, the first one only
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
        utc(2026, 11, 3, 6, 30),
    ]


def test_a_local_time_keeps_its_wall_clock_hour_across_the_change():
    timing = cron("0 9 * * *", "Europe/Paris")  # DST ends 25 October 2026
    assert timing.upcoming(utc(2026, 10, 24, 12), 2) == [
        utc(2026, 10, 25, 8),  # 09:00 CET (UTC+1)
        utc(2026, 10, 26, 8),
    ]
    assert cron("0 9 * * *", "Europe/Paris").after(utc(2026, 10, 23, 12)) == utc(2026, 10, 24, 7)


def test_an_hourly_expression_follows_real_time_through_both_changes():
    hourly = cron("0 * * * *", "America/New_York")
    spring = hourly.upcoming(utc(2026, 3, 8, 5, 10), 3)  # 00:10 EST
    assert spring == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)]  # 01, 03, 04
    autumn = hourly.upcoming(utc(2026, 11, 1, 4, 10), 3)  # 00:10 EDT
    # 01:00 EDT, 01:00 EST (the repeated hour fires again: an hour really passed), 02:00 EST
    assert autumn == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)]


def test_fire_times_only_increase_across_a_year_of_changes():
    timing = cron("*/30 * * * *", "Australia/Lord_Howe")  # a half-hour DST shift
    times = timing.upcoming(utc(2026, 1, 1), 2000)
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))


def test_at_or_before_is_the_last_fire_time_not_after():
    timing = cron("0 2 * * *", "Europe/Paris")
    assert timing.at_or_before(utc(2026, 6, 2, 0, 0)) == utc(2026, 6, 2, 0, 0)
    assert timing.at_or_before(utc(2026, 6, 1, 23, 59)) == utc(2026, 6, 1, 0, 0)


def test_an_interval_is_absolute_time_from_its_anchor():
    anchor = utc(2026, 3, 8, 6, 0)
    timing = Timing(None, "America/New_York", 3600, anchor)
    assert timing.after(anchor - timedelta(days=1)) == anchor
    assert timing.upcoming(anchor, 2) == [utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)]
    assert timing.at_or_before(anchor - timedelta(seconds=1)) is None
    assert timing.at_or_before(utc(2026, 3, 8, 9, 59)) == utc(2026, 3, 8, 9)
    assert timing.count_between(anchor, utc(2026, 3, 8, 9), cap=100) == 4


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * * *", "five fields"),
        ("61 * * * *", "Bad minute"),
        ("0 0 30 2 *", "Bad day-of-month"),
        ("@sometimes", "Unknown macro"),
        ("0 0 * * * *", "five fields"),
    ],
)
def test_bad_cron_expressions_say_why(expression, reason):
    assert reason in (cron_problem(expression) or "")


def test_macros_and_names_are_read():
    assert cron_problem("@daily") is None
    assert cron_problem("0 9 * JAN-MAR MON-FRI") is None
    assert cron("@hourly").after(utc(2026, 1, 1, 0, 30)) == utc(2026, 1, 1, 1)


def test_zones_are_iana_names():
    assert zone_problem("Europe/Paris") is None
    assert zone_problem("UTC") is None
    assert zone_problem("Mars/Olympus") is not None
    assert zone_problem("../../etc/passwd") is not None
