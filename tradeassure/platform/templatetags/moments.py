"""`{% deadline when %}` and `{% moment when %}`: a time as "in 2 days", with the exact time in the
viewer's zone on hover (`<time datetime title>`); the zone is the one the middleware activated."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from tradeassure.core import clock
from tradeassure.core.moments import relative_text

register = template.Library()


def _exact(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({timezone.get_current_timezone_name()})"


@register.simple_tag
def deadline(moment: datetime | None, overdue: str = "overdue by") -> str:
    """A deadline: 'in 2 days' (or 'overdue by 3 hours'), exact local time on hover."""
    if moment is None:
        return "—"
    now = clock.now()
    text = relative_text(moment, now)
    if moment < now:
        text = f"{overdue} {text.removesuffix(' ago')}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(timespec="seconds"),
        _exact(moment),
        text,
    )


@register.simple_tag
def moment(moment: datetime | None) -> str:
    """A past or future moment as exact local time, with 'in 2 days' / '3 days ago' on hover."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(timespec="seconds"),
        relative_text(moment, clock.now()),
        f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
    )
