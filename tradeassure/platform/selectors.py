from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse

from tradeassure.platform.models import Notification

# (label, url name, roles that see it). Apps add their pages here as they land.
NAVIGATION = [
    ("Suppliers", "suppliers:directory", {"*"}),
    ("My orders", "orders:buyer_list", {"buyer"}),
    ("Supplier dashboard", "suppliers:dashboard", {"supplier_staff"}),
    ("Orders", "orders:supplier_list", {"supplier_staff"}),
    ("Money", "payments:money", {"supplier_staff"}),
    ("Inspections", "disputes:inspector_home", {"inspector"}),
    ("Developers", "developers", {"buyer", "supplier_staff", "partner"}),
    ("Admin", "admin:index", {"mediator", "vetting"}),
]


def navigation_links_for(user) -> list[tuple[str, str]]:
    links = []
    for label, url_name, roles in NAVIGATION:
        if "*" in roles or user.role in roles or (user.is_superuser and "mediator" in roles):
            try:
                links.append((label, reverse(url_name)))
            except NoReverseMatch:
                continue  # the page's app has not landed yet
    return links


def notifications_for(user) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user)


def unread_notification_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
