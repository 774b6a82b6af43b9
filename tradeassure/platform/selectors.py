from django.apps import apps
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse

from accounts.team import Capability, team_allows
from tradeassure.core.app_hooks import NavLink
from tradeassure.platform.models import Notification


def declared_navigation() -> list[NavLink]:
    """Every app's `navigation` links (AppConfig), in bar order: the platform names no app's page."""
    links = [
        link for config in apps.get_app_configs() for link in getattr(config, "navigation", [])
    ]
    return sorted(links, key=lambda link: link.position)


def navigation_links_for(user) -> list[tuple[str, str]]:
    links = []
    for link in declared_navigation():
        roles = link.roles
        if link.capability and not team_allows(user, Capability(link.capability)):
            continue
        if "*" in roles or user.role in roles or (user.is_superuser and "mediator" in roles):
            try:
                links.append((link.label, reverse(link.url_name)))
            except NoReverseMatch:
                continue  # the page's app has not landed yet
    return links


def notifications_for(user) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user)


def unread_notification_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
