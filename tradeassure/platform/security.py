"""Log-in protection glue for django-axes: the backend, the username and the client address."""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest
from django_otp.admin import OTPAdminSite

from accounts.forms import StaffOTPAuthenticationForm


class StaffAdminSite(OTPAdminSite):
    """The admin, open only to staff who verified a TOTP device (mediators move money here)."""

    login_form = StaffOTPAuthenticationForm


class AxesBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for attempts that come in over HTTP.

    Code that authenticates without a request (the test client's `login()`, a shell) has no
    attempt to count or lock: it passes to the next backend instead of raising.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def axes_username(request: HttpRequest | None, credentials: dict | None) -> str | None:
    """The email an attempt is for, lower-cased: users log in with it in any letter case."""
    value = None
    if credentials:
        value = credentials.get("username") or credentials.get("email")
    if value is None and request is not None:
        value = request.POST.get("username")
    return value.strip().lower() if isinstance(value, str) else value


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: behind the trusted proxy (see TRUST_X_FORWARDED_PROTO) the last
    X-Forwarded-For entry, which that proxy wrote; otherwise the socket's peer."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and forwarded:
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR")
