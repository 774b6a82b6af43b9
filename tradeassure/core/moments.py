"""Moments as people read them: in their own time zone, and relative to now ("in 2 days").

Text written once for several people (a notification, an email) carries each moment as a
token (`moment_token`); `render_moments` writes the token out in each reader's zone when the
text is delivered to that reader, so nobody has to convert from UTC in their head."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

DEFAULT_TIME_ZONE = "UTC"
_TOKEN = re.compile(r"\[\[moment:([0-9T:+\-.]+)\]\]")


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone name zoneinfo knows, sorted (the choices of the profile setting)."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


def is_time_zone(name: str) -> bool:
    return bool(name) and name in time_zone_names()


def zone(name: str | None) -> tzinfo:
    """The zone called `name`, or UTC for an empty or unknown name."""
    if name and is_time_zone(name):
        return zoneinfo.ZoneInfo(name)
    return UTC


def moment_token(moment: datetime | None) -> str:
    """A placeholder for `moment` that `render_moments` writes out in the reader's zone."""
    if moment is None:
        return "—"
    return f"[[moment:{moment.astimezone(UTC).isoformat(timespec='seconds')}]]"


def local_text(moment: datetime, zone_name: str | None) -> str:
    """'2026-12-03 15:00 CET' in the reader's zone."""
    local = moment.astimezone(zone(zone_name))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def render_moments(text: str, zone_name: str | None) -> str:
    """`text` with every moment token written out in the zone called `zone_name`."""
    if "[[moment:" not in text:
        return text

    def write(match: re.Match[str]) -> str:
        try:
            moment = datetime.fromisoformat(match.group(1))
        except ValueError:
            return match.group(0)
        return local_text(moment, zone_name)

    return _TOKEN.sub(write, text)


def _amount(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days >= 2:
        return f"{days} days"
    if days == 1:
        return "1 day" if hours == 0 else f"1 day {hours} h"
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if minutes >= 1:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return "less than a minute"


def relative_text(moment: datetime, now: datetime) -> str:
    """'in 2 days', 'in 5 hours', '3 days ago' (a past deadline reads 'overdue by 3 days')."""
    delta = moment - now
    if delta >= timedelta(0):
        return f"in {_amount(delta)}"
    return f"{_amount(delta)} ago"
