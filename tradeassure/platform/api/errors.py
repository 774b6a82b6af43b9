"""RFC 9457 problem+json for the API: DRF's exception handler and unknown paths under /api/v1/.

The one place that turns domain errors (`tradeassure.core.errors`) and DRF's own exceptions
into problem+json responses with a stable `code`.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tradeassure.core.error_codes import CommonErrorCode
from tradeassure.core.errors import DomainError
from tradeassure.platform.error_codes import PlatformErrorCode

PROBLEM_CONTENT_TYPE = "application/problem+json"

_DRF_CODES = {
    drf_exceptions.NotAuthenticated: PlatformErrorCode.NOT_AUTHENTICATED,
    drf_exceptions.AuthenticationFailed: PlatformErrorCode.AUTHENTICATION_FAILED,
    drf_exceptions.PermissionDenied: CommonErrorCode.NOT_ALLOWED,
    drf_exceptions.NotFound: CommonErrorCode.NOT_FOUND,
    drf_exceptions.MethodNotAllowed: PlatformErrorCode.METHOD_NOT_ALLOWED,
    drf_exceptions.NotAcceptable: PlatformErrorCode.NOT_ACCEPTABLE,
    drf_exceptions.UnsupportedMediaType: PlatformErrorCode.UNSUPPORTED_MEDIA_TYPE,
    drf_exceptions.Throttled: PlatformErrorCode.THROTTLED,
    drf_exceptions.ParseError: PlatformErrorCode.MALFORMED_REQUEST,
    drf_exceptions.ValidationError: CommonErrorCode.VALIDATION_FAILED,
}


_DRF_TITLES = {
    PlatformErrorCode.NOT_AUTHENTICATED: "Authentication is required.",
    PlatformErrorCode.AUTHENTICATION_FAILED: "The credentials were not accepted.",
    CommonErrorCode.NOT_ALLOWED: "You may not do this.",
    CommonErrorCode.NOT_FOUND: "Not found.",
    PlatformErrorCode.METHOD_NOT_ALLOWED: "This method is not allowed here.",
    PlatformErrorCode.NOT_ACCEPTABLE: "No acceptable representation.",
    PlatformErrorCode.UNSUPPORTED_MEDIA_TYPE: "Unsupported media type.",
    PlatformErrorCode.THROTTLED: "Too many requests.",
    PlatformErrorCode.MALFORMED_REQUEST: "The request body could not be read.",
}

# What a bare HTTP status means when Django (not a view) answered it under /api/.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: (PlatformErrorCode.MALFORMED_REQUEST, "The request could not be read."),
    403: (CommonErrorCode.NOT_ALLOWED, "You may not do this."),
    404: (CommonErrorCode.NOT_FOUND, "Not found."),
    405: (PlatformErrorCode.METHOD_NOT_ALLOWED, "This method is not allowed here."),
    413: (PlatformErrorCode.REQUEST_TOO_LARGE, "The request is too large."),
    414: (PlatformErrorCode.REQUEST_URI_TOO_LONG, "The request URI is too long."),
    500: (PlatformErrorCode.INTERNAL_ERROR, "Something went wrong on our side."),
}


def problem(
    *, status: int, code: str, title: str, detail: str, instance: str = "", **extra: Any
) -> dict:
    body = {
        "type": f"https://tradeassure.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": str(code),
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure as `{"field.sub.0.name": ["message", …]}`: one level, stable."""
    flat: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(data, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in data):
            flat.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in data)
        else:
            for index, item in enumerate(data):
                if item:
                    name = f"{prefix}.{index}" if prefix else str(index)
                    for field, messages in flatten_errors(item, name).items():
                        flat.setdefault(field, []).extend(messages)
    else:
        flat.setdefault(prefix or "non_field_errors", []).append(str(data))
    return flat


def problem_response(
    *, status: int, detail: str, instance: str = "", code: str = "", title: str = ""
) -> JsonResponse:
    """A plain Django problem+json response (for answers given outside DRF's views)."""
    default_code, default_title = STATUS_CODES.get(status, (PlatformErrorCode.ERROR, "Error"))
    body = problem(
        status=status,
        code=code or default_code,
        title=title or default_title,
        detail=detail,
        instance=instance,
    )
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _suspicious_problem(exc: SuspiciousOperation, instance: str) -> Response:
    """Django refuses a request it cannot safely read: too large (413) or malformed (400)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        status, detail = 413, f"The request body is larger than {limit:,} bytes."
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        status, detail = 413, "The request has too many fields or files."
    else:
        status, detail = 400, "The request could not be read."
    code, title = STATUS_CODES[status]
    body = problem(status=status, code=code, title=title, detail=detail, instance=instance)
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handler: every error leaves the API as application/problem+json."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, SuspiciousOperation):
        return _suspicious_problem(exc, instance)
    if isinstance(exc, DomainError):
        body = problem(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.message,
            instance=instance,
        )
        if exc.fields:
            body["errors"] = flatten_errors(exc.fields)
        return Response(body, status=exc.status, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next(
        (c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), PlatformErrorCode.ERROR
    )
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = flatten_errors(
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        body = problem(
            status=response.status_code,
            code=code,
            title="Some input is not valid.",
            detail="See `errors` for what to change.",
            instance=instance,
            errors=errors,
        )
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        body = problem(
            status=response.status_code,
            code=code,
            title=_DRF_TITLES.get(code, str(detail) or "Error"),
            detail=str(detail),
            instance=instance,
        )
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


@csrf_exempt  # it changes nothing: a write to no resource is a 404, not a CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    detail = "No API resource at this path. See /api/docs/."
    if not request.path.endswith("/"):
        detail = "No API resource at this path: API paths end with a slash. See /api/docs/."
    body = problem(
        status=404,
        code=CommonErrorCode.NOT_FOUND,
        title="Not found.",
        detail=detail,
        instance=request.path,
    )
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: problem+json 403 under /api/, Django's page elsewhere."""
    if request.path_info.startswith("/api/"):
        return problem_response(
            status=403,
            code=PlatformErrorCode.CSRF_FAILED,
            title="The CSRF check failed.",
            detail=f"{reason} Browser sessions send the csrftoken cookie's value in an "
            "`X-CSRFToken` header; partners use an API key instead.".strip(),
            instance=request.path,
        )
    return django_csrf_failure(request, reason=reason)
