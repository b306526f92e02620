"""When a schedule fires: a cron expression in an IANA time zone, or a fixed interval.

Cron expressions are read by cronsim (five fields, Debian cron's rules, plus the usual
``@daily``-style macros). Fire times are computed in the schedule's zone and stored in UTC:

- an expression at specific times (``30 2 * * *``) follows Debian cron across DST: a time
  that does not exist (the spring-forward gap) fires at the first minute after the gap, a
  time that happens twice (fall-back) fires once, at its first occurrence;
- an expression with a wildcard minute or hour (``*/30 * * * *``) follows real time: every
  half hour that passes fires, including the repeated hour.

An interval is absolute time (DST does not stretch it): fire times are ``anchor + k *
interval``, the anchor being the moment the timing was set plus one interval.
"""

from __future__ import annotations

import dataclasses
import functools
import zoneinfo
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: What the spec says a cron expression looks like (the parser checks the rest).
CRON_PATTERN = r"^(@[a-z]{5,8}|[0-9A-Za-z*/,?#-]+( [0-9A-Za-z*/,?#-]+){4})$"
ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}$"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone (``Europe/Paris``, ``UTC``), or None."""
    if name not in _zones():
        return f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
    return None


def expand(expression: str) -> str:
    return MACROS.get(expression.strip().lower(), expression.strip())


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a five-field cron expression cronsim reads, or None."""
    expanded = expand(expression)
    if expanded.startswith("@"):
        return f"Unknown macro {expression!r}: use one of {', '.join(MACROS)}"
    if len(expanded.split()) != 5:
        return "A cron expression has five fields: minute hour day-of-month month day-of-week"
    try:
        CronSim(expanded, datetime.now(UTC))
    except CronSimError as error:
        return f"Invalid cron expression: {error}"
    return None


@dataclasses.dataclass(frozen=True)
class Timing:
    """The fire times of one schedule; every argument and result is an aware UTC time."""

    cron: str | None
    timezone: str
    interval_seconds: int | None
    anchor: datetime | None  # the first fire time of an interval

    def after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``."""
        if self.cron is None:
            return self._interval_at(self._index(moment) + 1)
        zone = zoneinfo.ZoneInfo(self.timezone)
        for fire in CronSim(expand(self.cron), moment.astimezone(zone)):
            fire = fire.astimezone(UTC)
            if fire > moment:
                return fire
        raise AssertionError("unreachable: cronsim iterates forever")

    def at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before ``moment`` (None before an interval's anchor)."""
        if self.cron is None:
            index = self._index(moment)
            return self._interval_at(index) if index >= 0 else None
        zone = zoneinfo.ZoneInfo(self.timezone)
        start = (moment + timedelta(seconds=1)).replace(microsecond=0).astimezone(zone)
        for fire in CronSim(expand(self.cron), start, reverse=True):
            fire = fire.astimezone(UTC)
            if fire <= moment:
                return fire
        raise AssertionError("unreachable: cronsim iterates forever")

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times after ``moment``."""
        times: list[datetime] = []
        for _ in range(count):
            moment = self.after(moment)
            times.append(moment)
        return times

    def count_between(self, first: datetime, last: datetime, cap: int) -> int:
        """How many fire times lie in ``[first, last]`` (``first`` is one), at most ``cap``."""
        if self.cron is None:
            return min(cap, self._index(last) - self._index(first) + 1)
        count, moment = 1, first
        while count < cap:
            moment = self.after(moment)
            if moment > last:
                break
            count += 1
        return count

    def explain(self) -> str:
        if self.cron is None:
            return f"Every {self.interval_seconds} seconds"
        text = CronSim(expand(self.cron), datetime.now(UTC)).explain()
        return f"{text} ({self.timezone})"

    def _index(self, moment: datetime) -> int:
        """k such that anchor + k * interval <= moment < anchor + (k+1) * interval."""
        assert self.anchor is not None and self.interval_seconds
        return (moment - self.anchor) // timedelta(seconds=self.interval_seconds)

    def _interval_at(self, index: int) -> datetime:
        assert self.anchor is not None and self.interval_seconds
        return self.anchor + max(index, 0) * timedelta(seconds=self.interval_seconds)


def interval_anchor(now: datetime, interval_seconds: int) -> datetime:
    """First fire time of an interval set at ``now``: one interval later, whole seconds."""
    return now.replace(microsecond=0) + timedelta(seconds=interval_seconds)
