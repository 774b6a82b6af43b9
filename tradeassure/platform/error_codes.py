"""Error codes of the API's own machinery: authentication, throttling, idempotency, API keys and
webhook endpoints. Listed with every app's codes by `tradeassure.platform.catalogue`."""

from enum import StrEnum


class PlatformErrorCode(StrEnum):
    # DRF's exceptions, as the problem+json handler names them (tradeassure.platform.api.errors).
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    THROTTLED = "throttled"
    MALFORMED_REQUEST = "malformed_request"
    ERROR = "error"  # any other DRF exception
    INTERNAL_ERROR = "internal_error"  # a bug: answered as problem+json, nothing stored
    # Django's own refusals under /api/, as problem+json (tradeassure.platform.api.middleware).
    CSRF_FAILED = "csrf_failed"
    REQUEST_TOO_LARGE = "request_too_large"
    REQUEST_URI_TOO_LONG = "request_uri_too_long"
    # Idempotency-Key (tradeassure.platform.api.idempotency).
    IDEMPOTENCY_KEY_REQUIRED = "idempotency_key_required"
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_REQUEST_IN_FLIGHT = "idempotency_request_in_flight"
    # API keys and webhooks (tradeassure.platform.api.services).
    TOO_MANY_API_KEYS = "too_many_api_keys"
    TOO_MANY_WEBHOOK_ENDPOINTS = "too_many_webhook_endpoints"
    DELIVERY_IN_PROGRESS = "delivery_in_progress"
