"""What apps declare on their AppConfig, and the guard that runs a post_migrate sync only once.

Apps declare schedules (`periodic_tasks`), staff permissions (`staff_permissions`) and their
navigation bar links (`navigation`) as plain data; whoever syncs them (the platform app, accounts) finds them through `django.apps`, so no
app imports another to be listed.
"""

from dataclasses import dataclass
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class PeriodicTask:
    """A beat schedule an app declares on its AppConfig (`periodic_tasks`); synced after migrate."""

    name: str
    task: str
    every_seconds: int | None = None
    crontab: str | None = None  # "minute hour day_of_month month_of_year day_of_week"


@dataclass(frozen=True)
class NavLink:
    """A navigation bar link an app declares on its AppConfig (`navigation`) for some roles."""

    label: str
    url_name: str
    roles: frozenset[str]  # "*": everyone logged in
    position: int  # the bar runs left to right by position, whatever app declares the link


def is_last_migrated_app(sender: Any) -> bool:
    """post_migrate fires once per app with models; act once, after every app's permissions exist."""
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    return sender is None or sender is with_models[-1]
