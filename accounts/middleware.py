"""Every page in the logged-in user's time zone (anonymous visitors read UTC)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tradeassure.core.moments import zone


class UserTimeZoneMiddleware:
    """Activate the user's zone for the request, so `|date`, `localtime` and the deadline tags
    show local times; deactivate afterwards so a thread never carries it to the next request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            timezone.activate(zone(getattr(user, "time_zone", "")))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
