"""What apps declare on their AppConfig, and the guard that runs a post_migrate sync only once.

Apps declare schedules (`periodic_tasks`), staff permissions (`staff_permissions`) and their
navigation bar links (`navigation`) as plain data, and their error codes (`error_codes`) and
event topics (`event_topics`) as a `StrEnum` (or its dotted path); whoever syncs or lists them
(the platform app, accounts) finds them through `django.apps`, so no app imports another to be
listed.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


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
    # A capability of the team role table (accounts.team) the member must have, or "".
    capability: str = ""


def is_last_migrated_app(sender: Any) -> bool:
    """post_migrate fires once per app with models; act once, after every app's permissions exist."""
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    return sender is None or sender is with_models[-1]


def declared_enums(attribute: str) -> list[type[StrEnum]]:
    """Every installed app's `attribute` (a StrEnum, or its dotted path), in INSTALLED_APPS order.

    A path that does not import, or names something else, is a mistake in the AppConfig: it
    fails loudly rather than leaving the app's members out of the list.
    """
    found: list[type[StrEnum]] = []
    for config in apps.get_app_configs():
        declared = getattr(config, attribute, None)
        if declared is None:
            continue
        if isinstance(declared, str):
            try:
                declared = import_string(declared)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"{config.name}: {attribute} = {declared!r} does not import: {exc}"
                ) from exc
        if not (isinstance(declared, type) and issubclass(declared, StrEnum)):
            raise ImproperlyConfigured(f"{config.name}: {attribute} must name a StrEnum.")
        found.append(declared)
    return found
