from django.urls import reverse


def navigation(request) -> dict:
    """The navigation bar: links for the user's role and the unread notification count."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "unread_notifications": 0}
    from tradeassure.platform.selectors import navigation_links_for, unread_notification_count

    return {
        "nav_links": navigation_links_for(user),
        "unread_notifications": unread_notification_count(user),
        "notifications_url": reverse("notifications"),
    }
