"""Rate limits: one bucket per API key, one per user (the browser and the API), and one per
organisation across all its API keys (each key acts through its own service member, so the
organisation, not that member, is the caller whose keys share a budget).

The buckets live in the cache (Redis in production). A cache outage must not fail requests
that do not need it, so a throttle that cannot reach its cache lets the request through and
logs why: for the length of the outage the API is unthrottled, never down.
"""

import logging

from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey

logger = logging.getLogger(__name__)


class FailOpenRateThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle that allows the request when its cache cannot be read or written."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as error:  # the cache backend's own connection errors vary by client
            logger.warning(
                "Throttle %s let a request through: the cache is unavailable (%s: %s).",
                self.scope,
                type(error).__name__,
                error,
            )
            return True


class ApiKeyRateThrottle(FailOpenRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class UserRateThrottle(FailOpenRateThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        user = request.user
        if user and user.is_authenticated:
            if getattr(user, "is_api_service", False):
                ident = f"org-{user.organisation_id}"
            else:
                ident = str(user.pk)
            return self.cache_format % {"scope": self.scope, "ident": ident}
        return None


class AnonymousRateThrottle(FailOpenRateThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
