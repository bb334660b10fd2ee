"""Cron schedules as Kubernetes' CronJobs read them: five fields or a macro, in a time zone.

The expressions are parsed and stepped by croniter (a well-kept library, instead of a cron
parser of our own). What Kubernetes accepts is narrower than what croniter does: five
fields (minute, hour, day of month, month, day of week; ``?`` allowed for either day) or
one of the macros below, and no ``TZ=`` prefix (the time zone is the ``timeZone`` field).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo

from croniter import CroniterBadDateError, croniter

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def check_schedule(expression: str) -> str:
    """The expression, if Kubernetes would take it; else ValueError saying why."""
    text = expression.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise ValueError("a time zone in the schedule is not allowed: use spec.timeZone instead")
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f"unknown macro {text!r} (use one of {', '.join(MACROS)})")
    elif len(text.split()) != 5:
        raise ValueError(
            f"{expression!r} is not a cron schedule: five fields are needed"
            " (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'"
        )
    if not croniter.is_valid(text):
        raise ValueError(f"{expression!r} is not a valid cron schedule")
    try:
        CronSchedule(text).next_after(0.0)
    except NeverDue:
        raise ValueError(f"{expression!r} never comes due (no such date)") from None
    return text


def check_time_zone(name: str) -> str:
    """A name of the IANA time zone database (``Europe/Berlin``, ``Etc/UTC``)."""
    if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (a name of the tz database, e.g. Etc/UTC)") from None
    return name


class NeverDue(Exception):
    """The schedule names no date that exists (``0 0 31 2 *``)."""


class CronSchedule:
    """A parsed schedule in one zone (UTC when none is given)."""

    def __init__(self, expression: str, zone: str | None = None) -> None:
        self.expression = expression.strip()
        self.zone: tzinfo = zoneinfo.ZoneInfo(zone) if zone else UTC

    def next_after(self, moment: float) -> float:
        """The first time the schedule comes due strictly after ``moment`` (Unix seconds)."""
        start = datetime.fromtimestamp(moment, tz=self.zone)
        try:
            return float(croniter(self.expression, start).get_next(float))
        except CroniterBadDateError:
            raise NeverDue(self.expression) from None
